package commitlog

// The stored-message format lives in package message (shared with the client, which must
// not depend on the mmap'd store). These aliases keep commitlog's types, constants and
// errors in its API; call message's functions directly.

import "github.com/raftmq/raftmq/message"

// Record format constants.
const (
	BlankSize                      = message.BlankSize
	DefaultMaxMessageSize          = message.DefaultMaxMessageSize
	FlagBornHostV6                 = message.FlagBornHostV6
	FlagCompressed                 = message.FlagCompressed
	FlagMultiTags                  = message.FlagMultiTags
	FlagStoreHostV6                = message.FlagStoreHostV6
	KeySeparator                   = message.KeySeparator
	MagicBlank                     = message.MagicBlank
	MagicMessage                   = message.MagicMessage
	MaxPropertiesLen               = message.MaxPropertiesLen
	MaxTopicLen                    = message.MaxTopicLen
	OffsetMsgIDLenV4               = message.OffsetMsgIDLenV4
	OffsetMsgIDLenV6               = message.OffsetMsgIDLenV6
	PropertyBuyerID                = message.PropertyBuyerID
	PropertyCheckImmunityTimeInSec = message.PropertyCheckImmunityTimeInSec
	PropertyCluster                = message.PropertyCluster
	PropertyConsumeStartTimestamp  = message.PropertyConsumeStartTimestamp
	PropertyCorrectionFlag         = message.PropertyCorrectionFlag
	PropertyCorrelationID          = message.PropertyCorrelationID
	PropertyDelayLevel             = message.PropertyDelayLevel
	PropertyInstanceID             = message.PropertyInstanceID
	PropertyKeys                   = message.PropertyKeys
	PropertyMQ2Flag                = message.PropertyMQ2Flag
	PropertyMaxOffset              = message.PropertyMaxOffset
	PropertyMaxReconsumeTimes      = message.PropertyMaxReconsumeTimes
	PropertyMinOffset              = message.PropertyMinOffset
	PropertyMsgRegion              = message.PropertyMsgRegion
	PropertyMsgType                = message.PropertyMsgType
	PropertyNameValueSep           = message.PropertyNameValueSep
	PropertyOriginMessageID        = message.PropertyOriginMessageID
	PropertyProducerGroup          = message.PropertyProducerGroup
	PropertyPushReplyTime          = message.PropertyPushReplyTime
	PropertyRealQueueID            = message.PropertyRealQueueID
	PropertyRealTopic              = message.PropertyRealTopic
	PropertyReconsumeTime          = message.PropertyReconsumeTime
	PropertyReplyArriveTime        = message.PropertyReplyArriveTime
	PropertyReplyToClient          = message.PropertyReplyToClient
	PropertyRetryTopic             = message.PropertyRetryTopic
	PropertySep                    = message.PropertySep
	PropertyShardingKey            = message.PropertyShardingKey
	PropertyTTL                    = message.PropertyTTL
	PropertyTags                   = message.PropertyTags
	PropertyTraceSwitch            = message.PropertyTraceSwitch
	PropertyTranPreparedQueueOff   = message.PropertyTranPreparedQueueOff
	PropertyTransactionCheckTimes  = message.PropertyTransactionCheckTimes
	PropertyTransactionPrepared    = message.PropertyTransactionPrepared
	PropertyTransferFlag           = message.PropertyTransferFlag
	PropertyUniqKey                = message.PropertyUniqKey
	PropertyWaitStoreMsgOK         = message.PropertyWaitStoreMsgOK
	RecordFixedSizeV4              = message.RecordFixedSizeV4
	TxCommitType                   = message.TxCommitType
	TxNotType                      = message.TxNotType
	TxPreparedType                 = message.TxPreparedType
	TxRollbackType                 = message.TxRollbackType
	TxTypeMask                     = message.TxTypeMask
)

// Errors of the record format.
var (
	ErrBlank              = message.ErrBlank
	ErrBodyTooLarge       = message.ErrBodyTooLarge
	ErrCorrupt            = message.ErrCorrupt
	ErrEmptyBody          = message.ErrEmptyBody
	ErrInvalidMsgID       = message.ErrInvalidMsgID
	ErrInvalidProperties  = message.ErrInvalidProperties
	ErrInvalidQueueID     = message.ErrInvalidQueueID
	ErrInvalidTopic       = message.ErrInvalidTopic
	ErrPropertiesTooLarge = message.ErrPropertiesTooLarge
	ErrTruncated          = message.ErrTruncated
	ErrZeroHeader         = message.ErrZeroHeader
)

// Record types.
type (
	Limits     = message.Limits
	Message    = message.Message
	MessageExt = message.MessageExt
	RecordInfo = message.RecordInfo
	RecordView = message.RecordView
)
