//! "Did you mean" suggestions and lists of valid choices for error messages.

/// The candidate closest to `unknown`, if it is close enough to be a likely typo.
pub fn closest<'a>(
    unknown: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Jaro-Winkler, as clap uses: it forgives transpositions and favours shared prefixes.
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(unknown, c), c))
        .filter(|(similarity, _)| *similarity >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `` `a`, `b`, `c` ``
pub fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "unknown {what} `x`{place}; did you mean `y`? expected one of: ..."
pub fn unknown(what: &str, unknown: &str, place: &str, candidates: &[&str]) -> String {
    let mut message = format!("unknown {what} `{unknown}`{place}");
    if let Some(near) = closest(unknown, candidates.iter().copied()) {
        message.push_str(&format!("; did you mean `{near}`?"));
    }
    if candidates.is_empty() {
        message.push_str("; there is none to choose from");
    } else {
        let separator = if message.ends_with('?') { " " } else { "; " };
        message.push_str(separator);
        message.push_str(&format!(
            "expected one of: {}",
            list(candidates.iter().copied())
        ));
    }
    message
}
