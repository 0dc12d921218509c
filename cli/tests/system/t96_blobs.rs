//! The blob store across a three-node cluster through the CLI: a 50 MB file written
//! through node 1 reads back identical through node 3; listing, replacing, deleting, and
//! the errors a user meets.

use std::time::Instant;

use crate::harness::{fails, ok};
use crate::t50_services::start_cluster;

#[test]
fn a_50_mb_blob_written_on_one_node_reads_back_identical_on_another() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = start_cluster(&dirs);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("big.bin");
    // Not all zeros: a chunk mix-up must show.
    let data: Vec<u8> = (0..50 * 1024 * 1024_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&source, &data).unwrap();
    let put = [
        "blob",
        "put",
        "builds/big.bin",
        "--file",
        source.to_str().unwrap(),
    ];
    let started = Instant::now();
    ok(&nodes[0].micro(&put));
    eprintln!("put 50 MB in {:?}", started.elapsed());

    let copy = work.path().join("copy.bin");
    let get = [
        "blob",
        "get",
        "builds/big.bin",
        "--file",
        copy.to_str().unwrap(),
    ];
    let started = Instant::now();
    ok(&nodes[2].micro(&get));
    eprintln!("got 50 MB in {:?}", started.elapsed());
    assert!(std::fs::read(&copy).unwrap() == data, "the copy differs");

    let small = work.path().join("small.txt");
    std::fs::write(&small, "v2").unwrap();
    ok(&nodes[1].micro(&[
        "blob",
        "put",
        "builds/big.bin",
        "--file",
        small.to_str().unwrap(),
    ]));
    ok(&nodes[1].micro(&["blob", "put", "other", "--file", small.to_str().unwrap()]));
    assert_eq!(
        ok(&nodes[2].micro(&["blob", "get", "builds/big.bin"])),
        "v2"
    );
    assert_eq!(
        ok(&nodes[0].micro(&["blob", "list"])),
        "builds/big.bin\nother\n"
    );
    assert_eq!(
        ok(&nodes[0].micro(&["blob", "list", "--prefix", "bu"])),
        "builds/big.bin\n"
    );
    ok(&nodes[0].micro(&["blob", "del", "other"]));
    let err = fails(&nodes[2].micro(&["blob", "get", "other"]), 127);
    assert!(err.contains("no blob"), "{err}");
    let err = fails(&nodes[2].micro(&["blob", "del", "other"]), 127);
    assert!(err.contains("no blob"), "{err}");
    let err = fails(
        &nodes[2].micro(&["blob", "put", "", "--file", small.to_str().unwrap()]),
        127,
    );
    assert!(err.contains("blob key"), "{err}");

    // No login: refused with the way out; another namespace's blobs are apart.
    let anonymous = tempfile::tempdir().unwrap();
    let global = ["--proxy", nodes[1].proxy.as_str()];
    let list = crate::harness::micro_in(anonymous.path(), &global, &["blob", "list"]);
    let err = fails(&list, 2);
    assert!(err.contains("micro login"), "{err}");
    let elsewhere = nodes[0].micro_with(&["--namespace", "other"], &["blob", "list"]);
    assert_eq!(ok(&elsewhere), "");
}
