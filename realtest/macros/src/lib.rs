//! `#[realtest::test]`: registers a function as a realtest test through `inventory`.
//!
//! ```ignore
//! #[realtest::test(tags = ["needs-ffmpeg", "slow"], timeout = "90s")]
//! async fn renders_a_pattern(ctx: &mut realtest::Ctx) -> anyhow::Result<()> { … }
//! ```
//!
//! The function keeps its name and body; the macro adds a registration next to it (with the
//! function's source file and the line of its `fn`, for reports). Sync and
//! `async` functions are accepted; the parameter list is either empty or one `&mut Ctx`. The
//! timeout is parsed here, so a malformed one is a compile error.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprArray, ExprLit, ItemFn, Lit, MetaNameValue, Token};

/// Registers the function as a realtest test. Arguments: `tags = ["…", …]`, `timeout = "60s"`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

struct Options {
    tags: Vec<String>,
    timeout_ms: Option<u64>,
}

fn parse_options(args: proc_macro2::TokenStream) -> syn::Result<Options> {
    let mut options = Options {
        tags: Vec::new(),
        timeout_ms: None,
    };
    let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
    for pair in pairs {
        let key = pair
            .path
            .get_ident()
            .map(|ident| ident.to_string())
            .unwrap_or_default();
        match key.as_str() {
            "tags" => options.tags = string_array(&pair.value)?,
            "timeout" => {
                let text = string_literal(&pair.value)?;
                let duration = humantime::parse_duration(&text).map_err(|err| {
                    syn::Error::new_spanned(&pair.value, format!("invalid timeout {text:?}: {err}"))
                })?;
                options.timeout_ms = Some(duration.as_millis() as u64);
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    &pair.path,
                    "unknown realtest::test argument; expected `tags = [..]` or `timeout = \"..\"`",
                ))
            }
        }
    }
    Ok(options)
}

fn string_literal(expr: &Expr) -> syn::Result<String> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Ok(text.value()),
        other => Err(syn::Error::new_spanned(other, "expected a string literal")),
    }
}

fn string_array(expr: &Expr) -> syn::Result<Vec<String>> {
    match expr {
        Expr::Array(ExprArray { elems, .. }) => elems.iter().map(string_literal).collect(),
        other => Err(syn::Error::new_spanned(
            other,
            "expected an array of string literals",
        )),
    }
}

fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let options = parse_options(args)?;
    let function: ItemFn = syn::parse2(item)?;
    let name = &function.sig.ident;
    let takes_ctx = match function.sig.inputs.len() {
        0 => false,
        1 => true,
        _ => {
            return Err(syn::Error::new_spanned(
                &function.sig.inputs,
                "a realtest test takes no arguments or one `&mut realtest::Ctx`",
            ))
        }
    };
    let call = match (function.sig.asyncness.is_some(), takes_ctx) {
        (false, true) => quote! { #name(ctx) },
        (false, false) => quote! { { let _ = ctx; #name() } },
        (true, true) => quote! { ::realtest::block_on(#name(ctx)) },
        (true, false) => quote! { { let _ = ctx; ::realtest::block_on(#name()) } },
    };
    let tags = &options.tags;
    let timeout = match options.timeout_ms {
        Some(ms) => quote! { ::core::option::Option::Some(#ms) },
        None => quote! { ::core::option::Option::None },
    };
    let runner = syn::Ident::new(&format!("__realtest_run_{name}"), Span::call_site());
    // `line!()` with the span of the `fn` keyword: the line of the function, not of the attribute.
    let line = quote_spanned! { function.sig.fn_token.span => ::core::line!() };
    Ok(quote! {
        #function

        #[doc(hidden)]
        fn #runner(ctx: &mut ::realtest::Ctx) -> ::realtest::TestResult {
            ::realtest::IntoTestResult::into_test_result(#call)
        }

        ::realtest::inventory::submit! {
            ::realtest::TestDef {
                module: ::core::module_path!(),
                name: ::core::stringify!(#name),
                tags: &[#(#tags),*],
                timeout_ms: #timeout,
                file: ::core::file!(),
                line: #line,
                run: #runner,
            }
        }
    })
}
