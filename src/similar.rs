//! "Did you mean": the names close to one that was not found, for targets and process names
//! alike, so every "no such thing" error can offer what the user probably meant.

/// Up to three of `names` close to `wanted`, nearest first. A name that contains `wanted`, or a
/// `/`-separated part of it, counts as close even when the spelling differs a lot (`billing`
/// for `na-prod/billing-bookkeeper`).
pub fn closest<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = names
        .into_iter()
        .map(|name| {
            let mut score = strsim::jaro_winkler(wanted, name);
            if name.contains(wanted)
                || wanted
                    .split('/')
                    .any(|part| !part.is_empty() && name.contains(part))
            {
                score += 0.2;
            }
            (score, name)
        })
        .filter(|(score, _)| *score >= 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut close: Vec<String> = Vec::new();
    for (_, name) in scored {
        if close.len() == 3 {
            break;
        }
        if !close.iter().any(|c| c == name) {
            close.push(name.to_string());
        }
    }
    close
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn near_names_come_first_and_far_ones_not_at_all() {
        let names = ["web", "worker", "db", "web"];
        assert_eq!(closest("webb", names), ["web"]);
        assert_eq!(closest("wokrer", names), ["worker"]);
        assert!(closest("zzzzzz", names).is_empty());
    }
}
