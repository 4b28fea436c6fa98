//! sibyl-bench end to end on a small data set: every workload runs on Sibyl and every read
//! check passes.

use clap::Parser;
use sibyl_tools::bench::{self, config::BenchConfig};

#[test]
fn every_workload_runs_on_sibyl_and_reads_back_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BenchConfig::try_parse_from([
        "sibyl-bench",
        "--engines",
        "sibyl",
        "--num",
        "3000",
        "--reads",
        "500",
        "--seeks",
        "50",
        "--seek-nexts",
        "10",
        "--sync-writers",
        "4",
        "--sync-writes",
        "200",
        "--seed",
        "42",
        "--dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let outcome = bench::run(&cfg).unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    let labels: Vec<String> = outcome.results.iter().map(|r| r.label()).collect();
    assert_eq!(
        labels,
        [
            "fillseq",
            "fillrandom",
            "overwrite",
            "readrandom",
            "readmissing",
            "seekrandom",
            "fillsync",
            "fillsync[batch]"
        ]
    );
    let readrandom = outcome.results[3].read.as_ref().unwrap();
    assert_eq!(readrandom.found, 500);
    assert_eq!(outcome.results[4].read.as_ref().unwrap().found, 0);
}

#[test]
fn an_engine_not_compiled_in_is_refused_with_its_feature_name() {
    let cfg =
        BenchConfig::try_parse_from(["sibyl-bench", "--engines", "sibyl,rocksdb", "--num", "10"]).unwrap();
    if cfg!(feature = "rocksdb") {
        return;
    }
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("--features rocksdb"), "{err}");
}

#[test]
fn read_workloads_without_data_load_it_first() {
    let cfg = BenchConfig::try_parse_from([
        "sibyl-bench",
        "--benchmarks",
        "readrandom,seekrandom",
        "--num",
        "1000",
        "--reads",
        "100",
        "--seeks",
        "30",
        "--seed",
        "1",
    ])
    .unwrap();
    let outcome = bench::run(&cfg).unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    assert_eq!(outcome.results[0].read.as_ref().unwrap().found, 100);
    assert!(outcome.results[0].note.is_some());
    // Every key exists, so every seek returns the key sought.
    assert_eq!(outcome.results[1].seek.as_ref().unwrap().found, 30);
}
