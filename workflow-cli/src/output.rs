//! What a command prints: a table on a terminal, or JSON with `--json`.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::ContentArrangement;

/// Rows to print, each as cells and as a JSON value, plus notes (a next page, unreadable rows).
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    json: Vec<serde_json::Value>,
    /// Replaces the rows' JSON with one value (a command about one thing).
    whole: Option<serde_json::Value>,
    notes: Vec<String>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            json: Vec::new(),
            whole: None,
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>, json: serde_json::Value) {
        self.rows.push(cells);
        self.json.push(json);
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// The rows' JSON values.
    pub fn json_rows(&self) -> serde_json::Value {
        serde_json::Value::Array(self.json.clone())
    }

    pub fn with_json(mut self, value: serde_json::Value) -> Self {
        self.whole = Some(value);
        self
    }
}

/// Prints `table` (as JSON with `json`): notes go to stderr, so stdout stays parseable.
pub fn print(table: &Table, json: bool) {
    if json {
        let value = table
            .whole
            .clone()
            .unwrap_or_else(|| serde_json::Value::Array(table.json.clone()));
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        let mut out = comfy_table::Table::new();
        out.load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(&table.header);
        for row in &table.rows {
            out.add_row(row);
        }
        println!("{out}");
    }
    for note in &table.notes {
        eprintln!("{note}");
    }
}
