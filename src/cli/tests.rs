//! The command line's own tests: a value clap cannot check alone, and clap's consistency checks.

use super::*;

#[test]
fn sleeper_intervals_are_numbers_of_seconds() {
    let interval = |text: &str| {
        Cli::try_parse_from(["rhizome", "sleeper", &format!("--interval={text}")]).map(|cli| {
            match cli.command {
                Some(Command::Sleeper(args)) => args.interval,
                other => panic!("{other:?}"),
            }
        })
    };
    for (text, seconds) in [("0", 0.0), ("0.25", 0.25), ("2", 2.0), (" 1.5 ", 1.5)] {
        assert_eq!(interval(text).unwrap(), seconds, "{text}");
    }
    for text in [
        "nan", "NaN", "inf", "-inf", "infinity", "-1", "1e300", "", "soon",
    ] {
        let err = interval(text).unwrap_err().to_string();
        assert!(
            err.contains("is not a number of seconds of 0 or more"),
            "{text}: {err}"
        );
    }
}

#[test]
fn the_command_line_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}
