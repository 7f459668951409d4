package node

// HeldPulls is the number of long polls this node holds right now.
func (n *Node) HeldPulls() int64 { return n.consumers.heldPulls.Load() }
