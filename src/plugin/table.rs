//! Plain-text tables in kubectl's style: upper-case headers, columns padded to the widest cell
//! and three spaces apart, no trailing blanks.

use super::terminal::clean;

/// Renders `header` and `rows`; each row has one cell per header column. Cells are cleaned for
/// the terminal here, where every table's cluster data enters: a newline or tab in one would
/// break the table, an escape sequence would do worse.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| clean(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("   ");
            }
            line.push_str(cell);
            let pad = width - cell.chars().count();
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_to_the_widest_cell() {
        let rows = vec![
            vec!["db-1".to_owned(), "Ready".to_owned(), "12s".to_owned()],
            vec![
                "web-frontend".to_owned(),
                "Failed".to_owned(),
                "-".to_owned(),
            ],
        ];
        assert_eq!(
            render(&["NAME", "PHASE", "LEFT"], &rows),
            "NAME           PHASE    LEFT\n\
             db-1           Ready    12s\n\
             web-frontend   Failed   -\n"
        );
    }

    #[test]
    fn control_characters_in_a_cell_cannot_break_the_table() {
        let rows = vec![
            vec!["db-1".to_owned(), "two\nlines\tand\u{1b}[2J".to_owned()],
            vec!["web".to_owned(), "磁盘已满".to_owned()],
        ];
        let text = render(&["NAME", "NOTE"], &rows);
        assert_eq!(
            text,
            "NAME   NOTE\n\
             db-1   two lines and\u{FFFD}[2J\n\
             web    磁盘已满\n"
        );
    }

    #[test]
    fn a_table_without_rows_is_just_the_header() {
        assert_eq!(render(&["NAME", "AGE"], &[]), "NAME   AGE\n");
    }
}
