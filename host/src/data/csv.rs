//! CSV data sets: one example per line, numeric columns, one of them an integer class label.
//! No header; blank lines are skipped; the file may be gzipped (detected by its magic bytes).

use std::path::Path;

use super::{read_maybe_gz, DataError, Dataset};

/// A class label: a non-negative integer, also written as an integral float (`3.0`).
fn parse_label(cell: &str) -> Option<u32> {
    if let Ok(v) = cell.parse::<u32>() {
        return Some(v);
    }
    let v: f64 = cell.parse().ok()?;
    (v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64).then_some(v as u32)
}

/// Loads a CSV file. `label_column` is a column index; negative values count from the end
/// (`-1`, the default in configs, is the last column). Every line must have the same number of
/// columns as the first; values are parsed as `f32`, labels as non-negative integers.
pub fn load_csv(path: &Path, label_column: i64) -> Result<Dataset, DataError> {
    let bytes = read_maybe_gz(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DataError::Csv {
        path: path.to_path_buf(),
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        message: "invalid UTF-8".into(),
    })?;
    let err = |line: usize, message: String| DataError::Csv {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut columns = 0usize;
    let mut label_at = 0usize;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if columns == 0 {
            columns = cells.len();
            if columns < 2 {
                return Err(err(
                    lineno,
                    format!("expected at least 2 columns (inputs and a label), found {columns}"),
                ));
            }
            let idx = if label_column < 0 {
                columns as i64 + label_column
            } else {
                label_column
            };
            if idx < 0 || idx >= columns as i64 {
                return Err(err(
                    lineno,
                    format!("label column {label_column} is out of range for {columns} columns"),
                ));
            }
            label_at = idx as usize;
        } else if cells.len() != columns {
            return Err(err(
                lineno,
                format!("expected {columns} columns, found {}", cells.len()),
            ));
        }
        for (c, cell) in cells.iter().enumerate() {
            if c == label_at {
                let label: u32 = parse_label(cell).ok_or_else(|| {
                    err(
                        lineno,
                        format!(
                            "column {}: expected a non-negative integer label, found {cell:?}",
                            c + 1
                        ),
                    )
                })?;
                y.push(label);
            } else {
                let v: f32 = cell.parse().map_err(|_| {
                    err(
                        lineno,
                        format!("column {}: expected a number, found {cell:?}", c + 1),
                    )
                })?;
                if !v.is_finite() {
                    return Err(err(
                        lineno,
                        format!("column {}: expected a finite number, found {cell:?}", c + 1),
                    ));
                }
                x.push(v);
            }
        }
    }
    if y.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    let classes = y.iter().copied().max().unwrap_or(0) as usize + 1;
    Ok(Dataset {
        features: columns - 1,
        classes,
        x,
        y,
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
}
