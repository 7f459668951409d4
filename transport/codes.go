package transport

import "strconv"

// SerializeType is the header encoding of a frame: the high byte of the
// header-length word.
type SerializeType byte

// Header encodings.
const (
	SerializeJSON     SerializeType = 0 // JSON header (what the Go client sends)
	SerializeRocketMQ SerializeType = 1 // RocketMQ binary header (RocketMQSerializable)
)

// String returns "JSON", "ROCKETMQ" or "SerializeType(n)".
func (t SerializeType) String() string {
	switch t {
	case SerializeJSON:
		return "JSON"
	case SerializeRocketMQ:
		return "ROCKETMQ"
	}
	return "SerializeType(" + strconv.Itoa(int(t)) + ")"
}

// LanguageCode identifies the implementation language of the sender
// (RocketMQ's LanguageCode enum).
type LanguageCode byte

// Language codes, numbered as in RocketMQ's LanguageCode.java.
const (
	LanguageJava   LanguageCode = 0
	LanguageCPP    LanguageCode = 1
	LanguageDotNet LanguageCode = 2
	LanguagePython LanguageCode = 3
	LanguageDelphi LanguageCode = 4
	LanguageErlang LanguageCode = 5
	LanguageRuby   LanguageCode = 6
	LanguageOther  LanguageCode = 7
	LanguageHTTP   LanguageCode = 8
	LanguageGo     LanguageCode = 9
	LanguagePHP    LanguageCode = 10
	LanguageOMS    LanguageCode = 11
	LanguageRust   LanguageCode = 12
)

var languageNames = [...]string{"JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP", "OMS", "RUST"}

// String returns the RocketMQ name ("GO", "JAVA", ...), or "LanguageCode(n)"
// for numbers RocketMQ does not define.
func (l LanguageCode) String() string {
	if int(l) < len(languageNames) {
		return languageNames[l]
	}
	return "LanguageCode(" + strconv.Itoa(int(l)) + ")"
}

// ParseLanguage maps a RocketMQ language name ("GO", "JAVA", ...) to its
// code. ok is false for an unknown name.
func ParseLanguage(name string) (l LanguageCode, ok bool) {
	for i, n := range languageNames {
		if n == name {
			return LanguageCode(i), true
		}
	}
	return LanguageOther, false
}

// RequestCode is the code of a request frame. The numbers are RocketMQ's
// (RequestCode.java, rocketmq-all-4.9.7); the names are RocketMQ's in Go style.
type RequestCode int16

// String returns e.g. "SEND_MESSAGE(10)", or "RequestCode(n)" for unknown codes.
func (c RequestCode) String() string {
	if n, ok := requestCodeNames[c]; ok {
		return n + "(" + strconv.Itoa(int(c)) + ")"
	}
	return "RequestCode(" + strconv.Itoa(int(c)) + ")"
}

// Name returns RocketMQ's bare name ("SEND_MESSAGE"), or "" if unknown.
func (c RequestCode) Name() string { return requestCodeNames[c] }

// ResponseCode is the code of a response frame. The numbers are RocketMQ's
// (RemotingSysResponseCode.java and ResponseCode.java, rocketmq-all-4.9.7).
type ResponseCode int16

// String returns e.g. "SYSTEM_ERROR(1)", or "ResponseCode(n)" for unknown codes.
func (c ResponseCode) String() string {
	if n, ok := responseCodeNames[c]; ok {
		return n + "(" + strconv.Itoa(int(c)) + ")"
	}
	return "ResponseCode(" + strconv.Itoa(int(c)) + ")"
}

// Name returns RocketMQ's bare name ("SYSTEM_ERROR"), or "" if unknown.
func (c ResponseCode) Name() string { return responseCodeNames[c] }

// Request codes.
const (
	SendMessage                      RequestCode = 10  // SEND_MESSAGE
	PullMessage                      RequestCode = 11  // PULL_MESSAGE
	QueryMessage                     RequestCode = 12  // QUERY_MESSAGE
	QueryBrokerOffset                RequestCode = 13  // QUERY_BROKER_OFFSET
	QueryConsumerOffset              RequestCode = 14  // QUERY_CONSUMER_OFFSET
	UpdateConsumerOffset             RequestCode = 15  // UPDATE_CONSUMER_OFFSET
	UpdateAndCreateTopic             RequestCode = 17  // UPDATE_AND_CREATE_TOPIC
	GetAllTopicConfig                RequestCode = 21  // GET_ALL_TOPIC_CONFIG
	GetTopicConfigList               RequestCode = 22  // GET_TOPIC_CONFIG_LIST
	GetTopicNameList                 RequestCode = 23  // GET_TOPIC_NAME_LIST
	UpdateBrokerConfig               RequestCode = 25  // UPDATE_BROKER_CONFIG
	GetBrokerConfig                  RequestCode = 26  // GET_BROKER_CONFIG
	TriggerDeleteFiles               RequestCode = 27  // TRIGGER_DELETE_FILES
	GetBrokerRuntimeInfo             RequestCode = 28  // GET_BROKER_RUNTIME_INFO
	SearchOffsetByTimestamp          RequestCode = 29  // SEARCH_OFFSET_BY_TIMESTAMP
	GetMaxOffset                     RequestCode = 30  // GET_MAX_OFFSET
	GetMinOffset                     RequestCode = 31  // GET_MIN_OFFSET
	GetEarliestMsgStoreTime          RequestCode = 32  // GET_EARLIEST_MSG_STORETIME
	ViewMessageByID                  RequestCode = 33  // VIEW_MESSAGE_BY_ID
	HeartBeat                        RequestCode = 34  // HEART_BEAT
	UnregisterClient                 RequestCode = 35  // UNREGISTER_CLIENT
	ConsumerSendMsgBack              RequestCode = 36  // CONSUMER_SEND_MSG_BACK
	EndTransaction                   RequestCode = 37  // END_TRANSACTION
	GetConsumerListByGroup           RequestCode = 38  // GET_CONSUMER_LIST_BY_GROUP
	CheckTransactionState            RequestCode = 39  // CHECK_TRANSACTION_STATE
	NotifyConsumerIDsChanged         RequestCode = 40  // NOTIFY_CONSUMER_IDS_CHANGED
	LockBatchMQ                      RequestCode = 41  // LOCK_BATCH_MQ
	UnlockBatchMQ                    RequestCode = 42  // UNLOCK_BATCH_MQ
	GetAllConsumerOffset             RequestCode = 43  // GET_ALL_CONSUMER_OFFSET
	GetAllDelayOffset                RequestCode = 45  // GET_ALL_DELAY_OFFSET
	CheckClientConfig                RequestCode = 46  // CHECK_CLIENT_CONFIG
	UpdateAndCreateACLConfig         RequestCode = 50  // UPDATE_AND_CREATE_ACL_CONFIG
	DeleteACLConfig                  RequestCode = 51  // DELETE_ACL_CONFIG
	GetBrokerClusterACLInfo          RequestCode = 52  // GET_BROKER_CLUSTER_ACL_INFO
	UpdateGlobalWhiteAddrsConfig     RequestCode = 53  // UPDATE_GLOBAL_WHITE_ADDRS_CONFIG
	GetBrokerClusterACLConfig        RequestCode = 54  // GET_BROKER_CLUSTER_ACL_CONFIG
	PutKVConfig                      RequestCode = 100 // PUT_KV_CONFIG
	GetKVConfig                      RequestCode = 101 // GET_KV_CONFIG
	DeleteKVConfig                   RequestCode = 102 // DELETE_KV_CONFIG
	RegisterBroker                   RequestCode = 103 // REGISTER_BROKER
	UnregisterBroker                 RequestCode = 104 // UNREGISTER_BROKER
	GetRouteInfoByTopic              RequestCode = 105 // GET_ROUTEINFO_BY_TOPIC
	GetBrokerClusterInfo             RequestCode = 106 // GET_BROKER_CLUSTER_INFO
	UpdateAndCreateSubscriptionGroup RequestCode = 200 // UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
	GetAllSubscriptionGroupConfig    RequestCode = 201 // GET_ALL_SUBSCRIPTIONGROUP_CONFIG
	GetTopicStatsInfo                RequestCode = 202 // GET_TOPIC_STATS_INFO
	GetConsumerConnectionList        RequestCode = 203 // GET_CONSUMER_CONNECTION_LIST
	GetProducerConnectionList        RequestCode = 204 // GET_PRODUCER_CONNECTION_LIST
	WipeWritePermOfBroker            RequestCode = 205 // WIPE_WRITE_PERM_OF_BROKER
	GetAllTopicListFromNameServer    RequestCode = 206 // GET_ALL_TOPIC_LIST_FROM_NAMESERVER
	DeleteSubscriptionGroup          RequestCode = 207 // DELETE_SUBSCRIPTIONGROUP
	GetConsumeStats                  RequestCode = 208 // GET_CONSUME_STATS
	SuspendConsumer                  RequestCode = 209 // SUSPEND_CONSUMER
	ResumeConsumer                   RequestCode = 210 // RESUME_CONSUMER
	ResetConsumerOffsetInConsumer    RequestCode = 211 // RESET_CONSUMER_OFFSET_IN_CONSUMER
	ResetConsumerOffsetInBroker      RequestCode = 212 // RESET_CONSUMER_OFFSET_IN_BROKER
	AdjustConsumerThreadPool         RequestCode = 213 // ADJUST_CONSUMER_THREAD_POOL
	WhoConsumeTheMessage             RequestCode = 214 // WHO_CONSUME_THE_MESSAGE
	DeleteTopicInBroker              RequestCode = 215 // DELETE_TOPIC_IN_BROKER
	DeleteTopicInNamesrv             RequestCode = 216 // DELETE_TOPIC_IN_NAMESRV
	GetKVListByNamespace             RequestCode = 219 // GET_KVLIST_BY_NAMESPACE
	ResetConsumerClientOffset        RequestCode = 220 // RESET_CONSUMER_CLIENT_OFFSET
	GetConsumerStatusFromClient      RequestCode = 221 // GET_CONSUMER_STATUS_FROM_CLIENT
	InvokeBrokerToResetOffset        RequestCode = 222 // INVOKE_BROKER_TO_RESET_OFFSET
	InvokeBrokerToGetConsumerStatus  RequestCode = 223 // INVOKE_BROKER_TO_GET_CONSUMER_STATUS
	QueryTopicConsumeByWho           RequestCode = 300 // QUERY_TOPIC_CONSUME_BY_WHO
	GetTopicsByCluster               RequestCode = 224 // GET_TOPICS_BY_CLUSTER
	RegisterFilterServer             RequestCode = 301 // REGISTER_FILTER_SERVER
	RegisterMessageFilterClass       RequestCode = 302 // REGISTER_MESSAGE_FILTER_CLASS
	QueryConsumeTimeSpan             RequestCode = 303 // QUERY_CONSUME_TIME_SPAN
	GetSystemTopicListFromNS         RequestCode = 304 // GET_SYSTEM_TOPIC_LIST_FROM_NS
	GetSystemTopicListFromBroker     RequestCode = 305 // GET_SYSTEM_TOPIC_LIST_FROM_BROKER
	CleanExpiredConsumeQueue         RequestCode = 306 // CLEAN_EXPIRED_CONSUMEQUEUE
	GetConsumerRunningInfo           RequestCode = 307 // GET_CONSUMER_RUNNING_INFO
	QueryCorrectionOffset            RequestCode = 308 // QUERY_CORRECTION_OFFSET
	ConsumeMessageDirectly           RequestCode = 309 // CONSUME_MESSAGE_DIRECTLY
	SendMessageV2                    RequestCode = 310 // SEND_MESSAGE_V2
	GetUnitTopicList                 RequestCode = 311 // GET_UNIT_TOPIC_LIST
	GetHasUnitSubTopicList           RequestCode = 312 // GET_HAS_UNIT_SUB_TOPIC_LIST
	GetHasUnitSubUnunitTopicList     RequestCode = 313 // GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST
	CloneGroupOffset                 RequestCode = 314 // CLONE_GROUP_OFFSET
	ViewBrokerStatsData              RequestCode = 315 // VIEW_BROKER_STATS_DATA
	CleanUnusedTopic                 RequestCode = 316 // CLEAN_UNUSED_TOPIC
	GetBrokerConsumeStats            RequestCode = 317 // GET_BROKER_CONSUME_STATS
	UpdateNamesrvConfig              RequestCode = 318 // UPDATE_NAMESRV_CONFIG
	GetNamesrvConfig                 RequestCode = 319 // GET_NAMESRV_CONFIG
	SendBatchMessage                 RequestCode = 320 // SEND_BATCH_MESSAGE
	QueryConsumeQueue                RequestCode = 321 // QUERY_CONSUME_QUEUE
	QueryDataVersion                 RequestCode = 322 // QUERY_DATA_VERSION
	ResumeCheckHalfMessage           RequestCode = 323 // RESUME_CHECK_HALF_MESSAGE
	SendReplyMessage                 RequestCode = 324 // SEND_REPLY_MESSAGE
	SendReplyMessageV2               RequestCode = 325 // SEND_REPLY_MESSAGE_V2
	PushReplyMessageToClient         RequestCode = 326 // PUSH_REPLY_MESSAGE_TO_CLIENT
	AddWritePermOfBroker             RequestCode = 327 // ADD_WRITE_PERM_OF_BROKER
	GetAllProducerInfo               RequestCode = 328 // GET_ALL_PRODUCER_INFO
	DeleteExpiredCommitLog           RequestCode = 329 // DELETE_EXPIRED_COMMITLOG
)

var requestCodeNames = map[RequestCode]string{
	SendMessage:                      "SEND_MESSAGE",
	PullMessage:                      "PULL_MESSAGE",
	QueryMessage:                     "QUERY_MESSAGE",
	QueryBrokerOffset:                "QUERY_BROKER_OFFSET",
	QueryConsumerOffset:              "QUERY_CONSUMER_OFFSET",
	UpdateConsumerOffset:             "UPDATE_CONSUMER_OFFSET",
	UpdateAndCreateTopic:             "UPDATE_AND_CREATE_TOPIC",
	GetAllTopicConfig:                "GET_ALL_TOPIC_CONFIG",
	GetTopicConfigList:               "GET_TOPIC_CONFIG_LIST",
	GetTopicNameList:                 "GET_TOPIC_NAME_LIST",
	UpdateBrokerConfig:               "UPDATE_BROKER_CONFIG",
	GetBrokerConfig:                  "GET_BROKER_CONFIG",
	TriggerDeleteFiles:               "TRIGGER_DELETE_FILES",
	GetBrokerRuntimeInfo:             "GET_BROKER_RUNTIME_INFO",
	SearchOffsetByTimestamp:          "SEARCH_OFFSET_BY_TIMESTAMP",
	GetMaxOffset:                     "GET_MAX_OFFSET",
	GetMinOffset:                     "GET_MIN_OFFSET",
	GetEarliestMsgStoreTime:          "GET_EARLIEST_MSG_STORETIME",
	ViewMessageByID:                  "VIEW_MESSAGE_BY_ID",
	HeartBeat:                        "HEART_BEAT",
	UnregisterClient:                 "UNREGISTER_CLIENT",
	ConsumerSendMsgBack:              "CONSUMER_SEND_MSG_BACK",
	EndTransaction:                   "END_TRANSACTION",
	GetConsumerListByGroup:           "GET_CONSUMER_LIST_BY_GROUP",
	CheckTransactionState:            "CHECK_TRANSACTION_STATE",
	NotifyConsumerIDsChanged:         "NOTIFY_CONSUMER_IDS_CHANGED",
	LockBatchMQ:                      "LOCK_BATCH_MQ",
	UnlockBatchMQ:                    "UNLOCK_BATCH_MQ",
	GetAllConsumerOffset:             "GET_ALL_CONSUMER_OFFSET",
	GetAllDelayOffset:                "GET_ALL_DELAY_OFFSET",
	CheckClientConfig:                "CHECK_CLIENT_CONFIG",
	UpdateAndCreateACLConfig:         "UPDATE_AND_CREATE_ACL_CONFIG",
	DeleteACLConfig:                  "DELETE_ACL_CONFIG",
	GetBrokerClusterACLInfo:          "GET_BROKER_CLUSTER_ACL_INFO",
	UpdateGlobalWhiteAddrsConfig:     "UPDATE_GLOBAL_WHITE_ADDRS_CONFIG",
	GetBrokerClusterACLConfig:        "GET_BROKER_CLUSTER_ACL_CONFIG",
	PutKVConfig:                      "PUT_KV_CONFIG",
	GetKVConfig:                      "GET_KV_CONFIG",
	DeleteKVConfig:                   "DELETE_KV_CONFIG",
	RegisterBroker:                   "REGISTER_BROKER",
	UnregisterBroker:                 "UNREGISTER_BROKER",
	GetRouteInfoByTopic:              "GET_ROUTEINFO_BY_TOPIC",
	GetBrokerClusterInfo:             "GET_BROKER_CLUSTER_INFO",
	UpdateAndCreateSubscriptionGroup: "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP",
	GetAllSubscriptionGroupConfig:    "GET_ALL_SUBSCRIPTIONGROUP_CONFIG",
	GetTopicStatsInfo:                "GET_TOPIC_STATS_INFO",
	GetConsumerConnectionList:        "GET_CONSUMER_CONNECTION_LIST",
	GetProducerConnectionList:        "GET_PRODUCER_CONNECTION_LIST",
	WipeWritePermOfBroker:            "WIPE_WRITE_PERM_OF_BROKER",
	GetAllTopicListFromNameServer:    "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
	DeleteSubscriptionGroup:          "DELETE_SUBSCRIPTIONGROUP",
	GetConsumeStats:                  "GET_CONSUME_STATS",
	SuspendConsumer:                  "SUSPEND_CONSUMER",
	ResumeConsumer:                   "RESUME_CONSUMER",
	ResetConsumerOffsetInConsumer:    "RESET_CONSUMER_OFFSET_IN_CONSUMER",
	ResetConsumerOffsetInBroker:      "RESET_CONSUMER_OFFSET_IN_BROKER",
	AdjustConsumerThreadPool:         "ADJUST_CONSUMER_THREAD_POOL",
	WhoConsumeTheMessage:             "WHO_CONSUME_THE_MESSAGE",
	DeleteTopicInBroker:              "DELETE_TOPIC_IN_BROKER",
	DeleteTopicInNamesrv:             "DELETE_TOPIC_IN_NAMESRV",
	GetKVListByNamespace:             "GET_KVLIST_BY_NAMESPACE",
	ResetConsumerClientOffset:        "RESET_CONSUMER_CLIENT_OFFSET",
	GetConsumerStatusFromClient:      "GET_CONSUMER_STATUS_FROM_CLIENT",
	InvokeBrokerToResetOffset:        "INVOKE_BROKER_TO_RESET_OFFSET",
	InvokeBrokerToGetConsumerStatus:  "INVOKE_BROKER_TO_GET_CONSUMER_STATUS",
	QueryTopicConsumeByWho:           "QUERY_TOPIC_CONSUME_BY_WHO",
	GetTopicsByCluster:               "GET_TOPICS_BY_CLUSTER",
	RegisterFilterServer:             "REGISTER_FILTER_SERVER",
	RegisterMessageFilterClass:       "REGISTER_MESSAGE_FILTER_CLASS",
	QueryConsumeTimeSpan:             "QUERY_CONSUME_TIME_SPAN",
	GetSystemTopicListFromNS:         "GET_SYSTEM_TOPIC_LIST_FROM_NS",
	GetSystemTopicListFromBroker:     "GET_SYSTEM_TOPIC_LIST_FROM_BROKER",
	CleanExpiredConsumeQueue:         "CLEAN_EXPIRED_CONSUMEQUEUE",
	GetConsumerRunningInfo:           "GET_CONSUMER_RUNNING_INFO",
	QueryCorrectionOffset:            "QUERY_CORRECTION_OFFSET",
	ConsumeMessageDirectly:           "CONSUME_MESSAGE_DIRECTLY",
	SendMessageV2:                    "SEND_MESSAGE_V2",
	GetUnitTopicList:                 "GET_UNIT_TOPIC_LIST",
	GetHasUnitSubTopicList:           "GET_HAS_UNIT_SUB_TOPIC_LIST",
	GetHasUnitSubUnunitTopicList:     "GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST",
	CloneGroupOffset:                 "CLONE_GROUP_OFFSET",
	ViewBrokerStatsData:              "VIEW_BROKER_STATS_DATA",
	CleanUnusedTopic:                 "CLEAN_UNUSED_TOPIC",
	GetBrokerConsumeStats:            "GET_BROKER_CONSUME_STATS",
	UpdateNamesrvConfig:              "UPDATE_NAMESRV_CONFIG",
	GetNamesrvConfig:                 "GET_NAMESRV_CONFIG",
	SendBatchMessage:                 "SEND_BATCH_MESSAGE",
	QueryConsumeQueue:                "QUERY_CONSUME_QUEUE",
	QueryDataVersion:                 "QUERY_DATA_VERSION",
	ResumeCheckHalfMessage:           "RESUME_CHECK_HALF_MESSAGE",
	SendReplyMessage:                 "SEND_REPLY_MESSAGE",
	SendReplyMessageV2:               "SEND_REPLY_MESSAGE_V2",
	PushReplyMessageToClient:         "PUSH_REPLY_MESSAGE_TO_CLIENT",
	AddWritePermOfBroker:             "ADD_WRITE_PERM_OF_BROKER",
	GetAllProducerInfo:               "GET_ALL_PRODUCER_INFO",
	DeleteExpiredCommitLog:           "DELETE_EXPIRED_COMMITLOG",
}

// Response codes.
const (
	Success                            ResponseCode = 0   // SUCCESS
	SystemError                        ResponseCode = 1   // SYSTEM_ERROR
	SystemBusy                         ResponseCode = 2   // SYSTEM_BUSY
	RequestCodeNotSupported            ResponseCode = 3   // REQUEST_CODE_NOT_SUPPORTED
	TransactionFailed                  ResponseCode = 4   // TRANSACTION_FAILED
	FlushDiskTimeout                   ResponseCode = 10  // FLUSH_DISK_TIMEOUT
	SlaveNotAvailable                  ResponseCode = 11  // SLAVE_NOT_AVAILABLE
	FlushSlaveTimeout                  ResponseCode = 12  // FLUSH_SLAVE_TIMEOUT
	MessageIllegal                     ResponseCode = 13  // MESSAGE_ILLEGAL
	ServiceNotAvailable                ResponseCode = 14  // SERVICE_NOT_AVAILABLE
	VersionNotSupported                ResponseCode = 15  // VERSION_NOT_SUPPORTED
	NoPermission                       ResponseCode = 16  // NO_PERMISSION
	TopicNotExist                      ResponseCode = 17  // TOPIC_NOT_EXIST
	TopicExistAlready                  ResponseCode = 18  // TOPIC_EXIST_ALREADY
	PullNotFound                       ResponseCode = 19  // PULL_NOT_FOUND
	PullRetryImmediately               ResponseCode = 20  // PULL_RETRY_IMMEDIATELY
	PullOffsetMoved                    ResponseCode = 21  // PULL_OFFSET_MOVED
	QueryNotFound                      ResponseCode = 22  // QUERY_NOT_FOUND
	SubscriptionParseFailed            ResponseCode = 23  // SUBSCRIPTION_PARSE_FAILED
	SubscriptionNotExist               ResponseCode = 24  // SUBSCRIPTION_NOT_EXIST
	SubscriptionNotLatest              ResponseCode = 25  // SUBSCRIPTION_NOT_LATEST
	SubscriptionGroupNotExist          ResponseCode = 26  // SUBSCRIPTION_GROUP_NOT_EXIST
	FilterDataNotExist                 ResponseCode = 27  // FILTER_DATA_NOT_EXIST
	FilterDataNotLatest                ResponseCode = 28  // FILTER_DATA_NOT_LATEST
	TransactionShouldCommit            ResponseCode = 200 // TRANSACTION_SHOULD_COMMIT
	TransactionShouldRollback          ResponseCode = 201 // TRANSACTION_SHOULD_ROLLBACK
	TransactionStateUnknow             ResponseCode = 202 // TRANSACTION_STATE_UNKNOW
	TransactionStateGroupWrong         ResponseCode = 203 // TRANSACTION_STATE_GROUP_WRONG
	NoBuyerID                          ResponseCode = 204 // NO_BUYER_ID
	NotInCurrentUnit                   ResponseCode = 205 // NOT_IN_CURRENT_UNIT
	ConsumerNotOnline                  ResponseCode = 206 // CONSUMER_NOT_ONLINE
	ConsumeMsgTimeout                  ResponseCode = 207 // CONSUME_MSG_TIMEOUT
	NoMessage                          ResponseCode = 208 // NO_MESSAGE
	UpdateAndCreateACLConfigFailed     ResponseCode = 209 // UPDATE_AND_CREATE_ACL_CONFIG_FAILED
	DeleteACLConfigFailed              ResponseCode = 210 // DELETE_ACL_CONFIG_FAILED
	UpdateGlobalWhiteAddrsConfigFailed ResponseCode = 211 // UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED
	FlowControl                        ResponseCode = 215 // FLOW_CONTROL
)

var responseCodeNames = map[ResponseCode]string{
	Success:                            "SUCCESS",
	SystemError:                        "SYSTEM_ERROR",
	SystemBusy:                         "SYSTEM_BUSY",
	RequestCodeNotSupported:            "REQUEST_CODE_NOT_SUPPORTED",
	TransactionFailed:                  "TRANSACTION_FAILED",
	FlushDiskTimeout:                   "FLUSH_DISK_TIMEOUT",
	SlaveNotAvailable:                  "SLAVE_NOT_AVAILABLE",
	FlushSlaveTimeout:                  "FLUSH_SLAVE_TIMEOUT",
	MessageIllegal:                     "MESSAGE_ILLEGAL",
	ServiceNotAvailable:                "SERVICE_NOT_AVAILABLE",
	VersionNotSupported:                "VERSION_NOT_SUPPORTED",
	NoPermission:                       "NO_PERMISSION",
	TopicNotExist:                      "TOPIC_NOT_EXIST",
	TopicExistAlready:                  "TOPIC_EXIST_ALREADY",
	PullNotFound:                       "PULL_NOT_FOUND",
	PullRetryImmediately:               "PULL_RETRY_IMMEDIATELY",
	PullOffsetMoved:                    "PULL_OFFSET_MOVED",
	QueryNotFound:                      "QUERY_NOT_FOUND",
	SubscriptionParseFailed:            "SUBSCRIPTION_PARSE_FAILED",
	SubscriptionNotExist:               "SUBSCRIPTION_NOT_EXIST",
	SubscriptionNotLatest:              "SUBSCRIPTION_NOT_LATEST",
	SubscriptionGroupNotExist:          "SUBSCRIPTION_GROUP_NOT_EXIST",
	FilterDataNotExist:                 "FILTER_DATA_NOT_EXIST",
	FilterDataNotLatest:                "FILTER_DATA_NOT_LATEST",
	TransactionShouldCommit:            "TRANSACTION_SHOULD_COMMIT",
	TransactionShouldRollback:          "TRANSACTION_SHOULD_ROLLBACK",
	TransactionStateUnknow:             "TRANSACTION_STATE_UNKNOW",
	TransactionStateGroupWrong:         "TRANSACTION_STATE_GROUP_WRONG",
	NoBuyerID:                          "NO_BUYER_ID",
	NotInCurrentUnit:                   "NOT_IN_CURRENT_UNIT",
	ConsumerNotOnline:                  "CONSUMER_NOT_ONLINE",
	ConsumeMsgTimeout:                  "CONSUME_MSG_TIMEOUT",
	NoMessage:                          "NO_MESSAGE",
	UpdateAndCreateACLConfigFailed:     "UPDATE_AND_CREATE_ACL_CONFIG_FAILED",
	DeleteACLConfigFailed:              "DELETE_ACL_CONFIG_FAILED",
	UpdateGlobalWhiteAddrsConfigFailed: "UPDATE_GLOBAL_WHITE_ADDRS_CONFIG_FAILED",
	FlowControl:                        "FLOW_CONTROL",
}
