//! CONTRACT §11: on a three-node RabbitMQ cluster with quorum queues, losing any one node at
//! any moment loses no order and every saga finishes. The services get all three nodes in
//! `AMQP_URL` and `AMQP_QUEUE_TYPE=quorum`; the tests SIGKILL the node they are connected
//! to mid-flow ([`kills`]), restart each node in turn under load ([`rolling_restart`]), and
//! cut the node they are on off the other two with `iptables` — a real partition, handled by
//! `pause_minority` ([`partition`]). After each, every order is `COMPLETED` (the saga
//! timeout is far away, so a lost message would leave its order `PENDING`), the §6
//! invariants hold, and the dead-letter queues are empty.
//!
//! Each test starts three extra RabbitMQ nodes (`tests/rabbit-cluster.sh`, ports 5681-5683;
//! the system node on 5672 is not touched) and stops them when it ends, so each starts from
//! a healthy cluster. They were one test running every fault in turn: about 2.5 minutes on
//! a quiet machine, 5 on a busy one, and past its 360 s limit under a CPU hog. One test per
//! fault takes 1-2 minutes. `.config/nextest.toml` runs this binary alone, one test at a
//! time. The helpers are in `saga_tests::cluster`.

// In `tests/tests/cluster/`, so that Cargo does not take each for a test binary of its own
// (which nextest would no longer run alone).
#[path = "cluster/kills.rs"]
mod kills;
#[path = "cluster/partition.rs"]
mod partition;
#[path = "cluster/rolling_restart.rs"]
mod rolling_restart;
