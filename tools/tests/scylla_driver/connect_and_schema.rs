//! Connecting with default driver settings, and the driver's view of the cluster and schema
//! (read from system.local / system.peers / system_schema through PREPARE + EXECUTE).

use crate::common::TestNode;
use scylla::cluster::metadata::{ColumnKind, Strategy};
use scylla::frame::response::result::{CollectionType, ColumnType, NativeType};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_connects_and_sees_one_node_with_its_tokens() {
    let node = TestNode::start();
    let session = node.session().await;
    let state = session.get_cluster_state();
    let nodes = state.get_nodes_info();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let n = &nodes[0];
    assert_eq!(n.address.ip(), node.address.ip());
    assert_eq!(n.address.port(), node.address.port());
    assert_eq!(n.datacenter.as_deref(), Some("datacenter1"));
    assert_eq!(n.rack.as_deref(), Some("rack1"));
    assert!(!n.host_id.is_nil());
    // num_tokens defaults to 16; the ring holds them all, all owned by this node.
    let ring = state.replica_locator().ring();
    assert_eq!(ring.len(), 16);
    assert!(ring.iter().all(|(_, owner)| owner.host_id == n.host_id));
    // system.local answers like Cassandra's.
    let (key, cluster, partitioner): (String, String, String) = session
        .query_unpaged("SELECT key, cluster_name, partitioner FROM system.local WHERE key = 'local'", ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    assert_eq!(key, "local");
    assert_eq!(cluster, "Test Cluster");
    assert_eq!(partitioner, "org.apache.cassandra.dht.Murmur3Partitioner");
    // The system keyspaces are described in system_schema, so the driver sees them.
    assert!(state.get_keyspace("system_schema").is_some());
    assert!(state.get_keyspace("system").is_some_and(|k| k.tables.contains_key("local")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_reach_the_driver_metadata() {
    let node = TestNode::start();
    let session = node.session().await;
    session
        .query_unpaged(
            "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1} \
             AND durable_writes = true",
            (),
        )
        .await
        .unwrap();
    session
        .query_unpaged(
            "CREATE TABLE shop.orders (region text, day int, placed timestamp, id uuid, \
             owner text STATIC, items list<text>, prices map<text, decimal>, total bigint, \
             PRIMARY KEY ((region, day), placed, id)) WITH CLUSTERING ORDER BY (placed DESC, id ASC)",
            (),
        )
        .await
        .unwrap();
    // The driver refreshes the changed objects after the schema agreement; force a full
    // refresh too, to exercise the whole metadata read.
    session.refresh_metadata().await.unwrap();
    let state = session.get_cluster_state();
    let ks = state.get_keyspace("shop").expect("keyspace in metadata");
    assert_eq!(ks.strategy, Strategy::SimpleStrategy { replication_factor: 1 });
    assert!(ks.durable_writes);
    let t = ks.tables.get("orders").expect("table in metadata");
    assert_eq!(t.partition_key, ["region", "day"]);
    assert_eq!(t.clustering_key, ["placed", "id"]);
    let kind = |c: &str| t.columns.get(c).map(|c| c.kind.clone());
    assert_eq!(kind("region"), Some(ColumnKind::PartitionKey));
    assert_eq!(kind("day"), Some(ColumnKind::PartitionKey));
    assert_eq!(kind("placed"), Some(ColumnKind::Clustering));
    assert_eq!(kind("id"), Some(ColumnKind::Clustering));
    assert_eq!(kind("owner"), Some(ColumnKind::Static));
    assert_eq!(kind("total"), Some(ColumnKind::Regular));
    let typ = |c: &str| t.columns.get(c).map(|c| c.typ.clone());
    assert_eq!(typ("placed"), Some(ColumnType::Native(NativeType::Timestamp)));
    assert_eq!(
        typ("items"),
        Some(ColumnType::Collection {
            frozen: false,
            typ: CollectionType::List(Box::new(ColumnType::Native(NativeType::Text)))
        })
    );
    assert_eq!(
        typ("prices"),
        Some(ColumnType::Collection {
            frozen: false,
            typ: CollectionType::Map(
                Box::new(ColumnType::Native(NativeType::Text)),
                Box::new(ColumnType::Native(NativeType::Decimal))
            )
        })
    );

    // ALTER and DROP are seen as well.
    session.query_unpaged("ALTER TABLE shop.orders ADD note text", ()).await.unwrap();
    session.refresh_metadata().await.unwrap();
    let state = session.get_cluster_state();
    let t = &state.get_keyspace("shop").unwrap().tables["orders"];
    assert_eq!(t.columns.get("note").map(|c| c.kind.clone()), Some(ColumnKind::Regular));
    session.query_unpaged("DROP TABLE shop.orders", ()).await.unwrap();
    session.refresh_metadata().await.unwrap();
    assert!(!session.get_cluster_state().get_keyspace("shop").unwrap().tables.contains_key("orders"));
    session.query_unpaged("DROP KEYSPACE shop", ()).await.unwrap();
    session.refresh_metadata().await.unwrap();
    assert!(session.get_cluster_state().get_keyspace("shop").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_topology_keyspace_and_use_keyspace() {
    let node = TestNode::start();
    let session = node.session().await;
    session
        .query_unpaged(
            "CREATE KEYSPACE nts WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1}",
            (),
        )
        .await
        .unwrap();
    session.refresh_metadata().await.unwrap();
    let state = session.get_cluster_state();
    match &state.get_keyspace("nts").unwrap().strategy {
        Strategy::NetworkTopologyStrategy { datacenter_repfactors } => {
            assert_eq!(datacenter_repfactors.get("datacenter1"), Some(&1));
        }
        other => panic!("unexpected strategy {other:?}"),
    }
    session.use_keyspace("nts", false).await.unwrap();
    assert_eq!(session.get_keyspace().as_deref().map(String::as_str), Some("nts"));
    session.query_unpaged("CREATE TABLE kv (k text PRIMARY KEY, v int)", ()).await.unwrap();
    session.query_unpaged("INSERT INTO kv (k, v) VALUES ('a', 1)", ()).await.unwrap();
    let (v,): (i32,) = session
        .query_unpaged("SELECT v FROM kv WHERE k = 'a'", ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .single_row()
        .unwrap();
    assert_eq!(v, 1);
    // A second session that starts in the keyspace.
    let other = scylla::client::session_builder::SessionBuilder::new()
        .known_node_addr(node.address)
        .use_keyspace("nts", false)
        .build()
        .await
        .unwrap();
    let rows = other.query_unpaged("SELECT k FROM kv", ()).await.unwrap().into_rows_result().unwrap();
    assert_eq!(rows.rows_num(), 1);
}
