//! `SELECT token(pk)` equals the driver's own Murmur3 token computation (prepared-statement
//! token, cluster-state token and the partitioner's hash of the serialized key), for random keys
//! of several types, including bytes >= 0x80 (Cassandra sign-extends tail bytes).

use crate::common::{exec, select, TestNode};
use rand::{Rng, SeedableRng};
use scylla::client::session::Session;
use scylla::routing::partitioner::{Murmur3Partitioner, Partitioner};

const KEYS: usize = 300;

/// Checks `SELECT token(k)` against the three driver computations for every key.
async fn check<K>(session: &Session, table: &str, keys: &[K], serialized: impl Fn(&K) -> Vec<u8>)
where
    K: scylla::serialize::value::SerializeValue + std::fmt::Debug,
{
    let insert = format!("INSERT INTO {table} (k) VALUES (?)");
    let query = format!("SELECT token(k) FROM {table} WHERE k = ?");
    let prepared = session.prepare(query.as_str()).await.expect("check");
    let state = session.get_cluster_state();
    for key in keys {
        exec(session, &insert, (key,)).await;
        let rows: Vec<(i64,)> = select(session, &query, (key,)).await;
        assert_eq!(rows.len(), 1, "{key:?}");
        let server = rows[0].0;
        let from_statement =
            prepared.calculate_token(&(key,)).expect("token").expect("a token for a full key").value();
        let from_state = state.compute_token("ks", table, &(key,)).expect("check").value();
        let from_partitioner = Murmur3Partitioner.hash_one(&serialized(key)).value();
        assert_eq!(server, from_statement, "token of {key:?}: server vs prepared statement");
        assert_eq!(server, from_state, "token of {key:?}: server vs cluster state");
        assert_eq!(server, from_partitioner, "token of {key:?}: server vs partitioner");
    }
}

fn random_text(rng: &mut impl Rng) -> String {
    let len = rng.random_range(1..24);
    (0..len)
        .map(|_| match rng.random_range(0..4) {
            0 => rng.random_range('a'..='z'),
            1 => rng.random_range('\u{80}'..='\u{7ff}'),
            2 => rng.random_range('\u{4e00}'..='\u{9fff}'),
            _ => rng.random_range('\u{1f300}'..='\u{1f5ff}'),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_function_matches_the_driver_for_random_keys() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    for (name, ty) in [("t_bigint", "bigint"), ("t_int", "int"), ("t_text", "text"), ("t_blob", "blob")] {
        session.query_unpaged(format!("CREATE TABLE {name} (k {ty} PRIMARY KEY)"), ()).await.unwrap();
    }
    session.refresh_metadata().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(crate::common::seed());

    let mut bigints: Vec<i64> = (0..KEYS).map(|_| rng.random()).collect();
    bigints.extend([0, -1, i64::MIN, i64::MAX]);
    check(&session, "t_bigint", &bigints, |k| k.to_be_bytes().to_vec()).await;

    let ints: Vec<i32> = (0..KEYS).map(|_| rng.random()).collect();
    check(&session, "t_int", &ints, |k| k.to_be_bytes().to_vec()).await;

    let mut texts: Vec<String> = (0..KEYS).map(|_| random_text(&mut rng)).collect();
    texts.push("a".into());
    check(&session, "t_text", &texts, |k| k.as_bytes().to_vec()).await;

    // Every length from 1 to 40 covers each tail length of the 16-byte blocks; many bytes >= 0x80.
    let mut blobs: Vec<Vec<u8>> = (1..=40).map(|len| (0..len).map(|_| rng.random()).collect()).collect();
    blobs.extend((0..KEYS).map(|_| {
        let len = rng.random_range(1..64);
        (0..len).map(|_| rng.random()).collect()
    }));
    blobs.push(vec![0xff; 15]);
    check(&session, "t_blob", &blobs, Clone::clone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_partition_key_tokens_and_token_ranges() {
    let node = TestNode::start();
    let session = node.session_in("ks").await;
    session
        .query_unpaged("CREATE TABLE comp (a int, b text, c int, PRIMARY KEY ((a, b), c))", ())
        .await
        .unwrap();
    session.refresh_metadata().await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(crate::common::seed());
    let keys: Vec<(i32, String)> = (0..KEYS).map(|_| (rng.random(), random_text(&mut rng))).collect();
    let prepared = session.prepare("SELECT token(a, b) FROM comp WHERE a = ? AND b = ?").await.unwrap();
    let state = session.get_cluster_state();
    let mut tokens = Vec::new();
    for (a, b) in &keys {
        exec(&session, "INSERT INTO comp (a, b, c) VALUES (?, ?, ?)", (a, b, 0)).await;
        let rows: Vec<(i64,)> =
            select(&session, "SELECT token(a, b) FROM comp WHERE a = ? AND b = ?", (a, b)).await;
        let server = rows[0].0;
        // Cassandra's composite key: each component as a 2-byte length, the bytes, then 0.
        let mut composite = Vec::new();
        for part in [a.to_be_bytes().to_vec(), b.as_bytes().to_vec()] {
            composite.extend((part.len() as u16).to_be_bytes());
            composite.extend(part);
            composite.push(0);
        }
        assert_eq!(server, Murmur3Partitioner.hash_one(&composite).value(), "({a}, {b:?})");
        assert_eq!(server, prepared.calculate_token(&(a, b)).unwrap().unwrap().value(), "({a}, {b:?})");
        assert_eq!(server, state.compute_token("ks", "comp", &(a, b)).unwrap().value(), "({a}, {b:?})");
        tokens.push((server, a, b));
    }
    // A token range scan returns exactly the keys whose tokens are in the range.
    tokens.sort();
    let (low, high) = (tokens[KEYS / 4].0, tokens[3 * KEYS / 4].0);
    let mut in_range: Vec<(i64, i32, String)> = select(
        &session,
        "SELECT token(a, b), a, b FROM comp WHERE token(a, b) > ? AND token(a, b) <= ?",
        (low, high),
    )
    .await;
    in_range.sort();
    let expected: Vec<(i64, i32, String)> = tokens
        .iter()
        .filter(|(t, ..)| *t > low && *t <= high)
        .map(|(t, a, b)| (*t, **a, (*b).clone()))
        .collect();
    assert_eq!(in_range, expected);
}
