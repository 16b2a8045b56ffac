realtest::main!();
