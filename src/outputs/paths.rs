//! Lexical path cleaning, as Go's `filepath.Clean` does it, and containment of cleaned paths.
//!
//! Outputs, volume-mount overlap and init-less input staging all compare paths the way the
//! upstream wait container computes them: by text, without touching the file system.

/// Lexically cleans `path` as Go's `filepath.Clean` does, and also says whether a `..` tried to
/// climb above the start: Go keeps such a `..` in a relative path and drops it after `/`.
pub fn clean_go(path: &str) -> (String, bool) {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    let mut climbed = false;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&p) if p != ".." => {
                    parts.pop();
                }
                _ => {
                    climbed = true;
                    if !rooted {
                        parts.push("..");
                    }
                }
            },
            _ => parts.push(part),
        }
    }
    let body = parts.join("/");
    let cleaned = if rooted {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_string()
    } else {
        body
    };
    (cleaned, climbed)
}

/// `path` cleaned as Go's `filepath.Clean`, or `None` when a `..` would climb above its start:
/// `../x`, `a/../../x`, and also `/../x` (which Go would quietly turn into `/x`): such a path
/// is not what its author meant, so it is refused rather than guessed at.
pub fn clean(path: &str) -> Option<String> {
    match clean_go(path) {
        (cleaned, false) => Some(cleaned),
        (_, true) => None,
    }
}

/// Whether `path` equals `mount` or lies below it, both already cleaned. An absolute path never
/// lies in a relative mount nor the reverse; `/` (and `.`) hold everything of their kind.
pub fn is_within(mount: &str, path: &str) -> bool {
    if mount.starts_with('/') != path.starts_with('/') {
        return false;
    }
    if path == mount || mount == "/" || mount == "." {
        return true;
    }
    path.strip_prefix(mount)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        // From Go's path/filepath clean tests.
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
            ("...", "..."),
            ("a/.../..", "a"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_go(input).0, want, "clean {input:?}");
        }
    }

    #[test]
    fn within() {
        assert!(is_within("/data", "/data"));
        assert!(is_within("/data", "/data/x"));
        assert!(!is_within("/data", "/data2"));
        assert!(is_within("/", "/anything"));
        assert!(!is_within("/data", "data/x"));
    }
}
