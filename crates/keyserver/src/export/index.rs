//! The indexes phones read: Google's `index.txt` and COCOA's `list.json`.

use crate::store::FileRow;

/// `index.txt`: one object path a line, oldest first.
pub fn index_txt(files: &[FileRow]) -> Vec<u8> {
    let mut out = String::new();
    for f in files {
        out.push_str(&f.path);
        out.push('\n');
    }
    out.into_bytes()
}

#[derive(serde::Serialize)]
struct Entry<'a> {
    region: &'a str,
    url: String,
    created: i64,
}

/// `{region}/list.json`: `[{"region", "url", "created"}]`, oldest first,
/// `created` in unix milliseconds as COCOA clients read it, `url` the file's
/// path under `public_url`.
pub fn list_json(files: &[FileRow], public_url: &str) -> Vec<u8> {
    let base = public_url.trim_end_matches('/');
    let entries: Vec<Entry<'_>> = files
        .iter()
        .map(|f| Entry {
            region: &f.region,
            url: format!("{base}/{}", f.path),
            created: f.created_at_ms,
        })
        .collect();
    serde_json::to_vec(&entries).unwrap_or_else(|_| b"[]".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_list_files_oldest_first() {
        let f = |path: &str, end: i64| FileRow {
            batch_id: 1,
            region: "440".into(),
            path: path.into(),
            batch_end: end,
            file_num: 1,
            key_count: 1000,
            created_at_ms: end * 1000,
        };
        let files = [f("440/1-2-00001.zip", 2), f("440/2-3-00001.zip", 3)];
        assert_eq!(
            String::from_utf8(index_txt(&files)).unwrap(),
            "440/1-2-00001.zip\n440/2-3-00001.zip\n"
        );
        let v: serde_json::Value =
            serde_json::from_slice(&list_json(&files, "https://cdn.example/c19r/")).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"region": "440", "url": "https://cdn.example/c19r/440/1-2-00001.zip", "created": 2000},
                {"region": "440", "url": "https://cdn.example/c19r/440/2-3-00001.zip", "created": 3000}
            ])
        );
        assert_eq!(list_json(&[], "/exports"), b"[]");
    }
}
