//! Expected and actual values side by side, for assertion failures.

use std::fmt::Write;

/// Rows of two lists compared position by position, with the differing rows marked.
pub(crate) fn ordered(expected: &[&str], actual: &[&str]) -> String {
    let rows = expected.len().max(actual.len());
    let pairs: Vec<(Option<&str>, Option<&str>)> = (0..rows)
        .map(|i| (expected.get(i).copied(), actual.get(i).copied()))
        .collect();
    render(&pairs, true)
}

/// Rows of two sets aligned on their common members (sorted by `rank`), with the members
/// missing from one side marked.
pub(crate) fn sets(expected: &[&str], actual: &[&str], rank: impl Fn(&str) -> usize) -> String {
    let mut all: Vec<&str> = expected.iter().chain(actual).copied().collect();
    all.sort_by_key(|name| (rank(name), *name));
    all.dedup();
    let pairs: Vec<(Option<&str>, Option<&str>)> = all
        .into_iter()
        .map(|name| {
            (
                expected.contains(&name).then_some(name),
                actual.contains(&name).then_some(name),
            )
        })
        .collect();
    render(&pairs, false)
}

fn render(pairs: &[(Option<&str>, Option<&str>)], numbered: bool) -> String {
    const ABSENT: &str = "-";
    let width = |column: Vec<Option<&str>>| {
        column
            .into_iter()
            .map(|cell| cell.map_or(ABSENT.len(), str::len))
            .fold("expected".len(), usize::max)
    };
    let left = width(pairs.iter().map(|p| p.0).collect());
    let right = width(pairs.iter().map(|p| p.1).collect());
    let index_width = pairs.len().to_string().len();
    let mut out = String::new();
    let prefix = |out: &mut String, index: Option<usize>| {
        out.push_str("    ");
        if numbered {
            match index {
                Some(i) => {
                    let _ = write!(out, "{i:>index_width$}  ");
                }
                None => {
                    let _ = write!(out, "{:index_width$}  ", "");
                }
            }
        }
    };
    prefix(&mut out, None);
    let _ = writeln!(out, "{:left$} | actual", "expected");
    prefix(&mut out, None);
    let _ = writeln!(out, "{:-<left$}-+-{:-<right$}", "", "");
    for (i, (expected, actual)) in pairs.iter().enumerate() {
        prefix(&mut out, Some(i + 1));
        let mark = match (expected, actual) {
            (Some(e), Some(a)) if e == a => "",
            (Some(_), Some(_)) => "   <- differs",
            (Some(_), None) => "   <- missing",
            (None, _) => "   <- unexpected",
        };
        let line = format!(
            "{:left$} | {:right$}{mark}",
            expected.unwrap_or(ABSENT),
            actual.unwrap_or(ABSENT)
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_rows_mark_differences() {
        let table = ordered(&["a", "b", "c"], &["a", "c"]);
        assert_eq!(
            table,
            "       expected | actual\n       ---------+---------\n    1  a        | a\n    2  b        | c          <- differs\n    3  c        | -          <- missing\n"
        );
    }

    #[test]
    fn set_rows_align_common_members() {
        let table = sets(&["a", "b"], &["c", "a"], |s| s.len());
        assert_eq!(
            table,
            "    expected | actual\n    ---------+---------\n    a        | a\n    b        | -          <- missing\n    -        | c          <- unexpected\n"
        );
    }
}
