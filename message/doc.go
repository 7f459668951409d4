// Package message is RocketMQ's message model as it travels and as it is stored: the
// stored-message record format v1 (the body of a PULL reply and of CHECK_TRANSACTION_STATE,
// and the bytes of the commitlog), message properties, offset message ids and the tag hash.
//
// It is a leaf package with no platform-specific code so that the broker's store
// (package commitlog) and the client library share one codec. The byte layout is specified
// in commitlog's package documentation and at the top of record.go.
package message
