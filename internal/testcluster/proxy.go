package testcluster

import (
	"io"
	"net"
	"sync"
)

// proxy is a TCP forwarder in front of one node's Raft address for one dialling node
// (etcd's bridge, simplified). Blackholed, it cuts its connections and refuses new ones, so
// the link between the two nodes looks down in both directions.
type proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	blackhole bool
	conns     map[net.Conn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.blackhole || p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *proxy) serve(in net.Conn) {
	defer p.wg.Done()
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		p.drop(in)
		return
	}
	p.mu.Lock()
	if p.blackhole || p.closed {
		p.mu.Unlock()
		out.Close()
		p.drop(in)
		return
	}
	p.conns[out] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	p.drop(in)
	p.drop(out)
	<-done
}

func (p *proxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// setBlackhole cuts (true) or restores (false) the link.
func (p *proxy) setBlackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	var cut []net.Conn
	if on {
		for c := range p.conns {
			cut = append(cut, c)
		}
	}
	p.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	var cut []net.Conn
	for c := range p.conns {
		cut = append(cut, c)
	}
	p.mu.Unlock()
	p.ln.Close()
	for _, c := range cut {
		c.Close()
	}
	p.wg.Wait()
}
