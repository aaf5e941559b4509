//! Writing roff by hand for the sections clap_mangen does not make: text escaped as roff wants
//! it, with `code` in bold, as clap_mangen writes options.

/// The two lines every page starts with (clap_mangen's too): `\*(Aq` is an upright apostrophe.
pub const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// One line of text: backslashes, hyphens and apostrophes escaped, `code` in bold, and a leading
/// dot kept from being read as a request.
pub fn text(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split('`').enumerate() {
        let part = escape(part);
        if i % 2 == 1 {
            out += &format!("\\fB{part}\\fR");
        } else {
            out += &part;
        }
    }
    if out.starts_with('.') {
        out.insert_str(0, "\\&");
    }
    out
}

/// Literal text, such as a file in an example: escaped, nothing in bold.
pub fn literal(line: &str) -> String {
    let out = escape(line);
    if out.starts_with('.') {
        format!("\\&{out}")
    } else {
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\*(Aq")
}

/// A section heading.
pub fn section(name: &str) -> String {
    if name.contains(' ') {
        format!(".SH \"{name}\"\n")
    } else {
        format!(".SH {name}\n")
    }
}

/// A tagged paragraph: `tag` (roff already) above `body` (plain text with `code`).
pub fn item(tag: &str, body: &str) -> String {
    format!(".TP\n{tag}\n{}\n", text(body))
}

/// Bold, as a tag: a name, a code.
pub fn bold(name: &str) -> String {
    format!("\\fB{}\\fR", escape(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_bold_and_nothing_reads_as_a_request() {
        assert_eq!(
            text("set `RHIZOME_HOME=DIR` - it's that"),
            "set \\fBRHIZOME_HOME=DIR\\fR \\- it\\*(Aqs that"
        );
        assert_eq!(text(".hidden"), "\\&.hidden");
        assert_eq!(literal(r"a = '\d'"), "a = \\*(Aq\\ed\\*(Aq");
    }
}
