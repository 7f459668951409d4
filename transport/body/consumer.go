package body

// ConsumerList is the reply body of GET_CONSUMER_LIST_BY_GROUP: the client ids of a consumer
// group's members.
type ConsumerList struct {
	ConsumerIDList []string `json:"consumerIdList"`
}

// Connection is one client connection of a ConsumerConnection or ProducerConnection.
type Connection struct {
	ClientID   string `json:"clientId"`
	ClientAddr string `json:"clientAddr"`
	Language   string `json:"language"` // JAVA, GO, ...
	Version    int    `json:"version"`  // the client's RocketMQ version number
}

// ConsumerConnection is the reply body of GET_CONSUMER_CONNECTION_LIST.
type ConsumerConnection struct {
	ConnectionSet     []Connection                `json:"connectionSet"`
	SubscriptionTable map[string]SubscriptionData `json:"subscriptionTable"` // by topic
	ConsumeType       string                      `json:"consumeType"`
	MessageModel      string                      `json:"messageModel"`
	ConsumeFromWhere  string                      `json:"consumeFromWhere"`
}

// ProducerConnection is the reply body of GET_PRODUCER_CONNECTION_LIST.
type ProducerConnection struct {
	ConnectionSet []Connection `json:"connectionSet"`
}
