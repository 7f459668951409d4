// Package namesrv is raftmq's name server: RocketMQ's stateless route
// registry, speaking the remoting protocol of package transport.
//
// Brokers register with every name server (REGISTER_BROKER) at start-up,
// every 30 s and on every role change; in raftmq the Raft leader of a broker
// group registers as brokerId 0 and the other nodes as slaves with ids ≥ 1.
// Producers and consumers ask a name server for a topic's route
// (GET_ROUTEINFO_BY_TOPIC) and get the compact JSON of TopicRouteData.
// Name servers never talk to each other.
//
// # Route table rules
//
// State lives in a RouteTable:
//   - Topic configs are taken from brokerId 0 only, and only on the first
//     registration of that address as id 0 or when its DataVersion changed.
//   - An address is listed once. Registering under a new id (a slave that
//     became leader, a leader that stepped down) replaces its old entry
//     without the group's queues ever disappearing in between; a different
//     address registering as id 0 displaces the previous id-0 address, which
//     is gone until it registers again (as a slave).
//   - A broker is dropped at once when the connection it registered on
//     closes, after brokerChannelExpiredTime (120 s) without registration or
//     QUERY_DATA_VERSION (checked every scanNotActiveBrokerInterval), or by a
//     matching UNREGISTER_BROKER. A group left without addresses loses its
//     queue data, so the topic's route goes (TOPIC_NOT_EXIST when no group
//     is left).
//   - Late unregister: UNREGISTER_BROKER removes an entry only if brokerName,
//     brokerId (and clusterName when sent) match the current registration of
//     brokerAddr, that registration is not newer than the unregister (its
//     sequence number is not above the table's sequence when the unregister
//     arrived) and it came over the same connection. An unregister from a
//     previous session of the broker therefore never wipes a fresh
//     registration. It is answered SUCCESS either way (with a remark when
//     nothing was removed).
//   - Stale masters (raftmq extension): a registration may carry ext
//     leaderEpoch (the Raft term in which the node became leader). An id-0
//     registration with an epoch below the highest one seen for the group is
//     refused with SYSTEM_ERROR, so a deposed leader's delayed registration
//     cannot push the real leader out. Registrations without it (Java
//     brokers) are not fenced.
//
// # Requests served
//
// REGISTER_BROKER (plain or compressed body, bodyCrc32 checked when not 0,
// optional heartbeatTimeoutMillis; reply ext masterAddr and haServerAddr for
// slaves, body the ORDER_TOPIC_CONFIG KV table), UNREGISTER_BROKER,
// GET_ROUTEINFO_BY_TOPIC, GET_BROKER_CLUSTER_INFO,
// GET_ALL_TOPIC_LIST_FROM_NAMESERVER, GET_TOPICS_BY_CLUSTER,
// DELETE_TOPIC_IN_NAMESRV (optionally scoped by clusterName),
// QUERY_DATA_VERSION, PUT/GET/DELETE_KV_CONFIG, GET_KVLIST_BY_NAMESPACE,
// WIPE_/ADD_WRITE_PERM_OF_BROKER. Other codes get
// REQUEST_CODE_NOT_SUPPORTED; a missing or malformed ext field or body gets
// SYSTEM_ERROR with a remark naming it.
//
// The broker side of registration (RegisterBroker, RegisterAll,
// UnregisterBroker, QueryDataVersion) and lookups for clients and tools
// (GetRouteInfo, GetClusterInfo) live here too, over a *transport.Client.
//
// # Wire shapes
//
// JSON keys as Java's fastjson writes them, compact, brokerAddrs always
// present (the Go client panics without it and splits it on "," and ":"):
//
//	route:   {"brokerDatas":[{"brokerAddrs":{"0":"ip:port"},"brokerName":"b","cluster":"c"}],
//	          "filterServerTable":{},"queueDatas":[{"brokerName":"b","perm":6,"readQueueNums":4,
//	          "topicSysFlag":0,"writeQueueNums":4}]}
//	cluster: {"brokerAddrTable":{"b":{BrokerData}},"clusterAddrTable":{"c":["b"]}}
//	topics:  {"topicList":["T1"]}
package namesrv
