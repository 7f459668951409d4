package commitlog

// Flush: two owned goroutines, one per kind, as RocketMQ's FlushRealTimeService
// and FlushConsumeQueueService. Every interval each writes back (msync, an
// fdatasync of the range) what is dirty when at least LeastPages 4 KiB pages
// are, or whatever is dirty once ThoroughInterval has passed since the last
// full flush, then records the new durable offsets in the checkpoint.

import (
	"errors"
	"fmt"
	"time"
)

// Flush makes everything appended so far durable: commitlog, journal,
// consume queues, index and checkpoint.
func (l *Log) Flush() error {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return l.flushAll()
}

func (l *Log) flushAll() error {
	return errors.Join(l.flushCommitLog(true), l.flushConsumeQueues(true))
}

// flushLoop is RocketMQ's flush service shape, one goroutine per kind of file: every
// interval it flushes what is dirty (enough pages of it, unless forced), and at least every
// thorough interval it forces a flush of whatever is dirty.
func (l *Log) flushLoop(what string, interval, thorough time.Duration, flush func(force bool) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		force := time.Since(last) >= thorough
		if force {
			last = time.Now()
		}
		if err := flush(force); err != nil {
			l.logger.Error("flush "+what, "err", err)
		}
	}
}

// flushCommitLog writes back the dirty commitlog range and the journal and
// advances the checkpoint's log offset. Without force it does nothing until
// FlushCommitLogLeastPages pages are dirty.
func (l *Log) flushCommitLog(force bool) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.RLock()
	if l.segments == nil {
		l.mu.RUnlock()
		return nil
	}
	end, from, applied, seq, gen := l.wpos, l.flushedPhys, l.applied, l.journal.seq, l.truncGen
	dirty := end/pageSize - from/pageSize
	if end <= from && (!force || l.ckpt.LogOffset == end) {
		l.mu.RUnlock()
		return nil
	}
	if !force && dirty < int64(l.cfg.FlushCommitLogLeastPages) {
		l.mu.RUnlock()
		return nil
	}
	var segs []*mappedFile
	for _, s := range l.segments {
		if s.end() > from && s.start < end && s.acquire() {
			segs = append(segs, s)
		}
	}
	jf := l.journal.mf
	jok := jf.acquire()
	l.mu.RUnlock()

	var err error
	for _, s := range segs {
		if err == nil {
			err = s.sync(from, end)
		}
		s.release()
	}
	if jok {
		if err == nil {
			err = jf.sync(0, jf.size)
		}
		jf.release()
	}
	if err != nil {
		return fmt.Errorf("commitlog: flush: %w", err)
	}
	l.mu.Lock()
	stale := gen != l.truncGen
	if !stale {
		l.flushedPhys = max(l.flushedPhys, end)
	}
	l.mu.Unlock()
	if stale {
		return nil
	}
	c := l.ckpt
	c.AppliedIndex, c.LogOffset, c.JournalSeq = applied, end, seq
	if err := writeCheckpoint(l.cfg.CheckpointPath, &c); err != nil {
		return err
	}
	l.ckpt = c
	l.dropFlushedCache(end)
	return nil
}

// dropFlushedCache drops the page cache of the commitlog below
// flushed-PageCacheKeep (drop-behind). Written once and read mostly near the
// head, a commitlog would otherwise grow the page cache by every byte
// appended until the kernel reclaims it: memory another broker or the
// consumers' hot tail could use, and on a VM that hands free memory back to
// its host, a host fault for every fresh page (docs/BENCHMARKS.md, round 6).
// The caller holds ckptMu, which serializes the drops.
func (l *Log) dropFlushedCache(flushed int64) {
	keep := l.cfg.PageCacheKeep
	if keep < 0 {
		return
	}
	limit := flushed - keep
	l.mu.RLock()
	var segs []*mappedFile
	for _, s := range l.segments {
		if s.start >= limit {
			break
		}
		if s.start+s.dropped.Load()+pageSize <= min(limit, s.end()) && s.acquire() {
			segs = append(segs, s)
		}
	}
	l.mu.RUnlock()
	for _, s := range segs {
		s.dropCache(limit)
		s.release()
	}
}

type cqFlushJob struct {
	cq    *consumeQueue
	files []*mappedFile
	from  int64
	to    int64
}

// flushConsumeQueues writes back dirty consume queues and the index and
// records their durable state in the checkpoint.
func (l *Log) flushConsumeQueues(force bool) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.RLock()
	if l.segments == nil {
		l.mu.RUnlock()
		return nil
	}
	end, gen := l.wpos, l.truncGen
	cqOff := end
	var jobs []cqFlushJob
	override := map[*consumeQueue]int64{}
	_ = l.forQueues(func(cq *consumeQueue) error {
		to := cq.max * CQEntrySize
		if cq.flushed >= to {
			return nil
		}
		if force || cq.dirtyPages() >= int64(l.cfg.FlushConsumeQueueLeastPages) {
			j := cqFlushJob{cq: cq, from: cq.flushed, to: to}
			for _, f := range cq.files {
				if f.end() > j.from && f.start < to && f.acquire() {
					j.files = append(j.files, f)
				}
			}
			jobs = append(jobs, j)
			override[cq] = cq.max
			return nil
		}
		if e, ok := cq.entry(cq.flushed / CQEntrySize); ok && e.Size != 0 {
			cqOff = min(cqOff, e.Phys)
		}
		return nil
	})
	table := l.queueTableLocked(override)
	l.mu.RUnlock()

	var err error
	for _, j := range jobs {
		for _, f := range j.files {
			if err == nil {
				err = f.sync(j.from, j.to)
			}
			f.release()
		}
	}
	if err != nil {
		return fmt.Errorf("commitlog: flush consume queues: %w", err)
	}
	l.mu.RLock()
	if l.index != nil {
		err = l.index.Flush()
	}
	l.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("commitlog: flush index: %w", err)
	}
	l.mu.Lock()
	stale := gen != l.truncGen
	if !stale {
		for _, j := range jobs {
			j.cq.flushed = max(j.cq.flushed, j.to)
		}
	}
	l.mu.Unlock()
	if stale {
		return nil
	}
	c := l.ckpt
	c.CQOffset, c.IndexOffset, c.Queues = cqOff, end, table
	if err := writeCheckpoint(l.cfg.CheckpointPath, &c); err != nil {
		return err
	}
	l.ckpt = c
	return nil
}
