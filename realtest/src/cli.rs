//! The harness's own command-line flags and environment variables. They are taken out of the
//! argument list before `libtest-mimic` parses the rest, so every libtest flag keeps working.

use std::path::PathBuf;

use clap::Parser as _;

use crate::junit::{self, Format, LogPolicy};
use crate::tags::TagExpr;

/// How `--check-deps` prints the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckDepsFormat {
    /// A table for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Everything the harness was asked for.
#[derive(Debug)]
pub struct Options {
    /// `--include-tag` / `REALTEST_INCLUDE_TAGS`: run only tests with one of these.
    pub include_tags: Vec<String>,
    /// `--exclude-tag` / `REALTEST_EXCLUDE_TAGS`: drop tests with any of these.
    pub exclude_tags: Vec<String>,
    /// `--tags` / `REALTEST_TAGS`.
    pub tag_expr: Option<TagExpr>,
    /// `--junit` / `REALTEST_JUNIT`, with `--junit-logs` and `--junit-format`.
    pub junit: Option<junit::Settings>,
    /// `--check-deps [--format json]`.
    pub check_deps: Option<CheckDepsFormat>,
    /// `--require` / `REALTEST_REQUIRE`, normalised to `needs-*` tags.
    pub require: Vec<String>,
    /// `--bench` / `REALTEST_BENCH`.
    pub bench: Option<PathBuf>,
    /// Everything else, for libtest-mimic.
    pub libtest: libtest_mimic::Arguments,
}

/// Help for the harness's own flags, printed after libtest's `--help`.
pub const HELP: &str = "\
realtest options (environment variable in brackets, for nextest):
      --include-tag TAG   run only tests carrying TAG; repeat for 'or' [REALTEST_INCLUDE_TAGS=a,b]
      --exclude-tag TAG   drop tests carrying TAG [REALTEST_EXCLUDE_TAGS]
      --tags EXPR         boolean tag expression, e.g. 'needs-v4l2 and not (slow or destructive)'
                          [REALTEST_TAGS]
      --junit PATH        write JUnit XML: a file collects every test binary of the run (one
                          suite each; a new run replaces them), a directory gets <binary>.xml
                          [REALTEST_JUNIT]
      --junit-logs WHICH  'failures' (default): logs of tests that did not pass; 'all'
                          [REALTEST_JUNIT_LOGS]
      --junit-format F    'rich' (default), or 'strict': only what the Jenkins xUnit schema
                          (junit-10.xsd) accepts [REALTEST_JUNIT_FORMAT]
      --check-deps        print what the probe found and exit (add --format json for JSON)
      --require CAP       CAP (e.g. needs-v4l2 or v4l2) must be present: a skip for it fails
                          [REALTEST_REQUIRE=a,b]
      --bench FILE        bench inventory (TOML): its cameras must be present, its
                          capabilities are required [REALTEST_BENCH]
Tests tagged 'destructive' run only when asked for by tag or by exact name.";

fn split_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
}

/// Why parsing did not produce [`Options`].
#[derive(Debug)]
pub enum CliExit {
    /// `--help` was asked for: print this and exit 0.
    Help(String),
    /// A usage error: print this and exit 2.
    Usage(String),
}

impl From<String> for CliExit {
    fn from(message: String) -> Self {
        CliExit::Usage(message)
    }
}

/// Parses `args` (including the program name first) and the environment read through `env`.
pub fn parse(
    args: Vec<String>,
    env: impl Fn(&str) -> Option<String>,
    known_needs: &[&str],
) -> Result<Options, CliExit> {
    let mut include_tags = Vec::new();
    let mut exclude_tags = Vec::new();
    let mut tags = None;
    let mut junit = None;
    let mut junit_logs = None;
    let mut junit_format = None;
    let mut check_deps = false;
    let mut format = None;
    let mut require = Vec::new();
    let mut bench = None;
    let mut rest = Vec::new();

    let is_check_deps = args.iter().any(|arg| arg == "--check-deps");
    let mut args = args.into_iter();
    if let Some(program) = args.next() {
        rest.push(program);
    }
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "--include-tag" => include_tags.push(value("--include-tag")?),
            "--exclude-tag" => exclude_tags.push(value("--exclude-tag")?),
            "--tags" => tags = Some(value("--tags")?),
            "--junit" => junit = Some(PathBuf::from(value("--junit")?)),
            "--junit-logs" => junit_logs = Some(("--junit-logs", value("--junit-logs")?)),
            "--junit-format" => junit_format = Some(("--junit-format", value("--junit-format")?)),
            "--require" => require.extend(split_list(&value("--require")?)),
            "--bench" => bench = Some(PathBuf::from(value("--bench")?)),
            "--check-deps" => check_deps = true,
            "--format" if is_check_deps => format = Some(value("--format")?),
            _ => rest.push(arg),
        }
    }

    if let Some(value) = env("REALTEST_INCLUDE_TAGS") {
        include_tags.extend(split_list(&value));
    }
    if let Some(value) = env("REALTEST_EXCLUDE_TAGS") {
        exclude_tags.extend(split_list(&value));
    }
    if let Some(value) = env("REALTEST_REQUIRE") {
        require.extend(split_list(&value));
    }
    let tags = tags.or_else(|| env("REALTEST_TAGS").filter(|v| !v.trim().is_empty()));
    let junit_given = junit.is_some() || env("REALTEST_JUNIT").is_some_and(|v| !v.is_empty());
    if let Some((flag, _)) = junit_logs.as_ref().or(junit_format.as_ref()) {
        if !junit_given {
            return Err(CliExit::Usage(format!(
                "{flag} needs a report: add --junit PATH (or set REALTEST_JUNIT)"
            )));
        }
    }
    let junit_logs =
        junit_logs.or_else(|| env("REALTEST_JUNIT_LOGS").map(|v| ("REALTEST_JUNIT_LOGS", v)));
    let junit_format =
        junit_format.or_else(|| env("REALTEST_JUNIT_FORMAT").map(|v| ("REALTEST_JUNIT_FORMAT", v)));
    let logs = match junit_logs {
        None => LogPolicy::Failures,
        Some((source, text)) => LogPolicy::parse(text.trim())
            .ok_or_else(|| format!("{source} takes 'failures' or 'all', not {text:?}"))?,
    };
    let report_format = match junit_format {
        None => Format::Rich,
        Some((source, text)) => Format::parse(text.trim())
            .ok_or_else(|| format!("{source} takes 'rich' or 'strict', not {text:?}"))?,
    };
    let junit = junit
        .or_else(|| {
            env("REALTEST_JUNIT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .map(|path| junit::Settings {
            path,
            logs,
            format: report_format,
        });
    let bench = bench.or_else(|| env("REALTEST_BENCH").map(PathBuf::from));

    let tag_expr = tags
        .map(|text| TagExpr::parse(&text))
        .transpose()
        .map_err(|err| err.to_string())?;
    let require = require
        .into_iter()
        .map(|cap| normalise_capability(&cap, known_needs))
        .collect::<Result<Vec<_>, _>>()?;
    let check_deps = match (check_deps, format.as_deref()) {
        (false, _) => None,
        (true, None | Some("table")) => Some(CheckDepsFormat::Table),
        (true, Some("json")) => Some(CheckDepsFormat::Json),
        (true, Some(other)) => {
            return Err(CliExit::Usage(format!(
                "--check-deps --format takes 'table' or 'json', not {other:?}"
            )))
        }
    };
    let libtest = libtest_mimic::Arguments::try_parse_from(rest).map_err(|err| {
        use clap::error::ErrorKind;
        match err.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                CliExit::Help(format!("{}\n{HELP}", err.render()))
            }
            _ => CliExit::Usage(
                err.render()
                    .to_string()
                    .trim_start_matches("error: ")
                    .to_string(),
            ),
        }
    })?;
    Ok(Options {
        include_tags,
        exclude_tags,
        tag_expr,
        junit,
        check_deps,
        require,
        bench,
        libtest,
    })
}

/// `v4l2` → `needs-v4l2`; unknown capabilities are an error naming the known ones.
pub fn normalise_capability(cap: &str, known_needs: &[&str]) -> Result<String, String> {
    let tag = if cap.starts_with(crate::needs::PREFIX) {
        cap.to_string()
    } else {
        format!("{}{cap}", crate::needs::PREFIX)
    };
    if known_needs.contains(&tag.as_str()) {
        Ok(tag)
    } else {
        Err(format!(
            "unknown capability {cap:?} (known: {})",
            known_needs.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEEDS: &[&str] = &["needs-ffmpeg", "needs-v4l2"];

    fn parse_args(args: &[&str], env: &[(&str, &str)]) -> Result<Options, String> {
        let args = std::iter::once("bin")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(
            args,
            |key| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            NEEDS,
        )
        .map_err(|exit| match exit {
            CliExit::Help(text) | CliExit::Usage(text) => text,
        })
    }

    #[test]
    fn own_flags_are_removed_and_libtest_flags_kept() {
        let options = parse_args(
            &[
                "--include-tag",
                "hardware",
                "--exact",
                "a::b",
                "--include-tag=slow",
                "--test-threads",
                "1",
                "--junit",
                "out",
                "--format",
                "terse",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(options.include_tags, ["hardware", "slow"]);
        assert_eq!(
            options.junit,
            Some(junit::Settings {
                path: PathBuf::from("out"),
                logs: LogPolicy::Failures,
                format: Format::Rich
            })
        );
        assert!(options.libtest.exact);
        assert_eq!(options.libtest.filter.as_deref(), Some("a::b"));
        assert_eq!(options.libtest.test_threads, Some(1));
        assert_eq!(
            options.libtest.format,
            Some(libtest_mimic::FormatSetting::Terse)
        );
    }

    #[test]
    fn environment_adds_to_flags() {
        let options = parse_args(
            &["--exclude-tag", "slow"],
            &[
                ("REALTEST_EXCLUDE_TAGS", "destructive, hardware"),
                ("REALTEST_TAGS", "needs-ffmpeg"),
                ("REALTEST_REQUIRE", "ffmpeg"),
            ],
        )
        .unwrap();
        assert_eq!(options.exclude_tags, ["slow", "destructive", "hardware"]);
        assert_eq!(
            options.tag_expr,
            Some(TagExpr::Tag("needs-ffmpeg".to_string()))
        );
        assert_eq!(options.require, ["needs-ffmpeg"]);
    }

    #[test]
    fn junit_settings_come_from_flags_or_the_environment() {
        let options = parse_args(
            &["--junit-logs", "all"],
            &[
                ("REALTEST_JUNIT", "r.xml"),
                ("REALTEST_JUNIT_FORMAT", "strict"),
            ],
        )
        .unwrap();
        assert_eq!(
            options.junit,
            Some(junit::Settings {
                path: PathBuf::from("r.xml"),
                logs: LogPolicy::All,
                format: Format::Strict
            })
        );
        let err = parse_args(&["--junit", "r.xml", "--junit-format", "xunit"], &[]).unwrap_err();
        assert_eq!(
            err,
            "--junit-format takes 'rich' or 'strict', not \"xunit\""
        );
        let err = parse_args(
            &[],
            &[("REALTEST_JUNIT", "r/"), ("REALTEST_JUNIT_LOGS", "some")],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "REALTEST_JUNIT_LOGS takes 'failures' or 'all', not \"some\""
        );
        let err = parse_args(&["--junit-logs", "all"], &[]).unwrap_err();
        assert_eq!(
            err,
            "--junit-logs needs a report: add --junit PATH (or set REALTEST_JUNIT)"
        );
    }

    #[test]
    fn check_deps_owns_format() {
        let options = parse_args(&["--check-deps", "--format", "json"], &[]).unwrap();
        assert_eq!(options.check_deps, Some(CheckDepsFormat::Json));
        assert_eq!(options.libtest.format, None);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let err = parse_args(&["--tags", "a and"], &[]).unwrap_err();
        assert!(err.contains("invalid tag expression"), "{err}");
        let err = parse_args(&["--require", "gpu"], &[]).unwrap_err();
        assert!(err.contains("unknown capability \"gpu\""), "{err}");
        let err = parse_args(&["--include-tag"], &[]).unwrap_err();
        assert_eq!(err, "--include-tag needs a value");
        let err = parse_args(&["--no-such-flag"], &[]).unwrap_err();
        assert!(err.contains("--no-such-flag"), "{err}");
    }
}
