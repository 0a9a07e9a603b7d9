//! CSV data sets: one example per line, numeric columns, one of them an integer class label.
//! An optional header row ([`Header`]); blank lines are skipped; the file may be gzipped
//! (detected by its magic bytes).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{read_maybe_gz, DataError, Dataset, MAX_CLASSES, MAX_FEATURES};

/// Whether a CSV file starts with a header row (`header = true | false | "auto"` in a config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HeaderSetting", into = "HeaderSetting")]
pub enum Header {
    /// The first row is a header if none of its cells is a number ([`CsvReport::header`]
    /// says when it was).
    #[default]
    Auto,
    /// The first row is a header.
    Yes,
    /// Every row is data.
    No,
}

/// How [`Header`] is written: a boolean or `"auto"`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum HeaderSetting {
    Bool(bool),
    Text(String),
}

impl TryFrom<HeaderSetting> for Header {
    type Error = String;

    fn try_from(h: HeaderSetting) -> Result<Self, String> {
        match h {
            HeaderSetting::Bool(true) => Ok(Header::Yes),
            HeaderSetting::Bool(false) => Ok(Header::No),
            HeaderSetting::Text(t) if t == "auto" => Ok(Header::Auto),
            HeaderSetting::Text(t) => {
                Err(format!("header = {t:?}: expected true, false or \"auto\""))
            }
        }
    }
}

impl From<Header> for HeaderSetting {
    fn from(h: Header) -> Self {
        match h {
            Header::Auto => HeaderSetting::Text("auto".into()),
            Header::Yes => HeaderSetting::Bool(true),
            Header::No => HeaderSetting::Bool(false),
        }
    }
}

/// How to read a CSV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The label column; negative values count from the end (`-1` is the last column).
    pub label_column: i64,
    /// Whether the first row is a header.
    pub header: Header,
    /// The class count, if known: a label at or above it is an error naming its line. Without
    /// it the count is the largest label + 1 (at most [`MAX_CLASSES`]).
    pub classes: Option<usize>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            label_column: -1,
            header: Header::No,
            classes: None,
        }
    }
}

/// What reading a CSV file found besides the data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsvReport {
    /// The header row skipped, if any.
    pub header: Option<String>,
    /// The largest label and the (1-based) line it is first found on.
    pub largest_label: (u32, usize),
}

/// A class label: a non-negative integer, also written as an integral float (`3.0`).
fn parse_label(cell: &str) -> Option<u64> {
    if let Ok(v) = cell.parse::<u64>() {
        return Some(v);
    }
    let v: f64 = cell.parse().ok()?;
    (v >= 0.0 && v.fract() == 0.0 && v < 1.8e19).then_some(v as u64)
}

/// Loads a CSV file without a header row. `label_column` is a column index; negative values
/// count from the end (`-1`, the default in configs, is the last column). Every line must have
/// the same number of columns as the first; values are parsed as `f32`, labels as non-negative
/// integers.
pub fn load_csv(path: &Path, label_column: i64) -> Result<Dataset, DataError> {
    let opts = CsvOptions {
        label_column,
        ..CsvOptions::default()
    };
    Ok(load_csv_with(path, &opts)?.0)
}

/// The columns of a CSV file, fixed by its first data row.
struct Columns {
    count: usize,
    label_at: usize,
}

impl Columns {
    fn of(
        cells: usize,
        label_column: i64,
        err: &dyn Fn(String) -> DataError,
    ) -> Result<Self, DataError> {
        if cells < 2 {
            return Err(err(format!(
                "expected at least 2 columns (inputs and a label), found {cells}"
            )));
        }
        if cells - 1 > MAX_FEATURES {
            return Err(err(format!(
                "{cells} columns: more than the {MAX_FEATURES} inputs an example may have"
            )));
        }
        let idx = if label_column < 0 {
            cells as i64 + label_column
        } else {
            label_column
        };
        if idx < 0 || idx >= cells as i64 {
            return Err(err(format!(
                "label column {label_column} is out of range for {cells} columns"
            )));
        }
        Ok(Self {
            count: cells,
            label_at: idx as usize,
        })
    }
}

/// Whether a first row is a header under `header`: `Auto` takes it for one if none of its cells
/// is a number.
fn is_header(header: Header, cells: &[&str]) -> bool {
    match header {
        Header::Yes => true,
        Header::No => false,
        Header::Auto => cells.iter().all(|c| c.parse::<f64>().is_err()),
    }
}

/// Loads a CSV file as `opts` says; returns the data and what was found besides it (the header
/// skipped, the largest label).
pub fn load_csv_with(path: &Path, opts: &CsvOptions) -> Result<(Dataset, CsvReport), DataError> {
    let bytes = read_maybe_gz(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError::Csv {
        path: path.to_path_buf(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        message: "invalid UTF-8 (is it a text file?)".into(),
    })?;
    let err = |line: usize, message: String| DataError::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut cols: Option<Columns> = None;
    let mut report = CsvReport::default();
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if std::mem::take(&mut first) && is_header(opts.header, &cells) {
            report.header = Some(line.to_string());
            continue;
        }
        let c = match &cols {
            Some(c) => c,
            None => cols.insert(Columns::of(cells.len(), opts.label_column, &|m| {
                err(lineno, m)
            })?),
        };
        if cells.len() != c.count {
            return Err(err(
                lineno,
                format!("expected {} columns, found {}", c.count, cells.len()),
            ));
        }
        for (k, cell) in cells.iter().enumerate() {
            if k == c.label_at {
                let label = parse_label(cell).ok_or_else(|| {
                    let hint = if y.is_empty() && opts.header == Header::No {
                        " (a header row? set data.header = true or \"auto\")"
                    } else {
                        ""
                    };
                    err(
                        lineno,
                        format!(
                            "column {}: expected a non-negative integer label, found {cell:?}{hint}",
                            k + 1
                        ),
                    )
                })?;
                y.push(check_label(path, lineno, label, opts.classes)?);
                if y.len() == 1 || label > report.largest_label.0 as u64 {
                    report.largest_label = (label as u32, lineno);
                }
            } else {
                let v: f32 = cell.parse().map_err(|_| {
                    err(
                        lineno,
                        format!("column {}: expected a number, found {cell:?}", k + 1),
                    )
                })?;
                if !v.is_finite() {
                    return Err(err(
                        lineno,
                        format!(
                            "column {}: expected a finite number (within f32 range), found {cell:?}",
                            k + 1
                        ),
                    ));
                }
                x.push(v);
            }
        }
    }
    let Some(c) = cols.filter(|_| !y.is_empty()) else {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    };
    let classes = opts.classes.unwrap_or(report.largest_label.0 as usize + 1);
    Ok((
        Dataset {
            features: c.count - 1,
            classes,
            x,
            y,
        },
        report,
    ))
}

/// A label of line `line`, checked against the configured class count, or against
/// [`MAX_CLASSES`] when the count is inferred.
fn check_label(
    path: &Path,
    line: usize,
    label: u64,
    classes: Option<usize>,
) -> Result<u32, DataError> {
    let why = match classes {
        Some(c) if label >= c as u64 => {
            format!("is not below data.classes = {c} (labels are 0..={})", c - 1)
        }
        None if label >= MAX_CLASSES as u64 => format!(
            "is too large: labels are class indices, at most {} ({MAX_CLASSES} classes)",
            MAX_CLASSES - 1
        ),
        _ => return Ok(label as u32),
    };
    Err(DataError::Label {
        path: path.to_path_buf(),
        at: format!("line {line}"),
        label,
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn parses_label_last_or_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "a.csv", "1,2,0\n3,4.5,2\n\n");
        let d = load_csv(&p, -1).unwrap();
        assert_eq!((d.features, d.classes, d.len()), (2, 3, 2));
        assert_eq!(d.x, vec![1.0, 2.0, 3.0, 4.5]);
        let d = load_csv(&p, 0).unwrap();
        assert_eq!(d.y, vec![1, 3]);
        assert_eq!(d.x, vec![2.0, 0.0, 4.5, 2.0]);
    }

    #[test]
    fn errors_name_file_line_and_expectation() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "digits.csv", "1,2,3\n1,2,3\n4,5\n");
        let e = load_csv(&p, -1).unwrap_err().to_string();
        assert!(
            e.contains("digits.csv line 3: expected 3 columns, found 2"),
            "{e}"
        );
        let p = write(&dir, "b.csv", "1,x,3\n");
        let e = load_csv(&p, -1).unwrap_err().to_string();
        assert!(
            e.contains("b.csv line 1: column 2: expected a number"),
            "{e}"
        );
        let p = write(&dir, "c.csv", "1,2,3.0\n1,2,2.5\n");
        let e = load_csv(&p, -1).unwrap_err().to_string();
        assert!(
            e.contains("c.csv line 2: column 3: expected a non-negative integer label"),
            "{e}"
        );
        let p = write(&dir, "d.csv", "\n\n");
        assert!(matches!(load_csv(&p, -1), Err(DataError::Empty { .. })));
        let p = write(&dir, "e.csv", "1,2\n");
        let e = load_csv(&p, 5).unwrap_err().to_string();
        assert!(e.contains("label column 5 is out of range"), "{e}");
        let e = load_csv(&dir.path().join("missing.csv"), -1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.csv"), "{e}");
    }

    #[test]
    fn a_header_row_is_read_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "h.csv", "x1, x2, label\n1,2,0\n3,4,1\n");
        let opts = |header| CsvOptions {
            header,
            ..CsvOptions::default()
        };
        let (d, r) = load_csv_with(&p, &opts(Header::Auto)).unwrap();
        assert_eq!((d.len(), r.header.as_deref()), (2, Some("x1, x2, label")));
        let (d, _) = load_csv_with(&p, &opts(Header::Yes)).unwrap();
        assert_eq!(d.x, vec![1.0, 2.0, 3.0, 4.0]);
        let e = load_csv_with(&p, &opts(Header::No))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("h.csv line 1: column 1: expected a number"),
            "{e}"
        );
        // Auto reads a numeric first row as data, and says nothing.
        let p = write(&dir, "n.csv", "1,2,0\n3,4,1\n");
        let (d, r) = load_csv_with(&p, &opts(Header::Auto)).unwrap();
        assert_eq!((d.len(), r.header), (2, None));
        // A half-numeric first row is a broken row, not a header.
        let p = write(&dir, "m.csv", "1,x,0\n3,4,1\n");
        let e = load_csv_with(&p, &opts(Header::Auto))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.csv line 1: column 2: expected a number"),
            "{e}"
        );
        // A label-less header row gets a hint when headers are off.
        let p = write(&dir, "l.csv", "1,2,label\n3,4,1\n");
        let e = load_csv_with(&p, &opts(Header::No))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a header row? set data.header"), "{e}");
    }

    #[test]
    fn labels_are_checked_against_the_classes_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        // One stray 7 among labels 0..=2.
        let p = write(&dir, "iris.csv", "1,0\n2,1\n3,2\n\n4,7\n5,1\n");
        let (d, r) = load_csv_with(&p, &CsvOptions::default()).unwrap();
        assert_eq!((d.classes, r.largest_label), (8, (7, 5)));
        let opts = CsvOptions {
            classes: Some(3),
            ..CsvOptions::default()
        };
        let e = load_csv_with(&p, &opts).unwrap_err().to_string();
        assert!(
            e.contains("iris.csv line 5: label 7 is not below data.classes = 3"),
            "{e}"
        );
        // A label of 4e9 made the loader infer 4e9 classes, and the split allocate for them.
        let p = write(&dir, "big.csv", "1,2,0\n3,4,4000000000\n5,6,1\n");
        let e = load_csv(&p, -1).unwrap_err().to_string();
        assert!(
            e.contains("big.csv line 2: label 4000000000 is too large"),
            "{e}"
        );
        let p = write(&dir, "huge.csv", "1,2,0\n3,4,1e300\n");
        let e = load_csv(&p, -1).unwrap_err().to_string();
        assert!(
            e.contains("line 2: column 3: expected a non-negative integer label"),
            "{e}"
        );
        let p = write(&dir, "inf.csv", "1,2,0\n1e39,4,1\n");
        let e = load_csv(&p, -1).unwrap_err().to_string();
        assert!(
            e.contains("line 2: column 1: expected a finite number"),
            "{e}"
        );
    }
}
