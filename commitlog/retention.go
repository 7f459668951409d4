package commitlog

// Retention, as RocketMQ's CleanCommitLogService: at the deleteWhen hour(s)
// (the hour of Config.Now in its location; time.Now is local time), or at
// once while the disk is above DiskMaxUsedSpaceRatio, sealed segments older
// than FileReservedTime are deleted, oldest first, never the active one.
//
// A segment's age is taken from the store timestamp of the first record of
// the segment after it: the log time at which it was sealed, which is at or
// after the store time of its own last record. This costs one record read
// (no scan of the sealed segment) and, unlike mtime, is the same on every
// replica, so replicas delete the same files.
//
// Consume queues and the index follow: a queue's min offset moves to its
// first entry whose record is still present, its files whose entries all
// point below the new first segment are deleted (never its last file, which
// keeps the max offset), and Index.DeleteBefore drops whole index files.

import (
	"errors"
	"time"

	"github.com/raftmq/raftmq/message"
)

func (l *Log) retentionLoop() {
	t := time.NewTicker(l.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if _, err := l.runRetention(false); err != nil {
			l.logger.Error("retention", "err", err)
		}
	}
}

// runRetention deletes expired segments if it is a deleteWhen hour, or
// regardless of the hour when force is set. It returns how many segments
// it deleted.
func (l *Log) runRetention(force bool) (int, error) {
	now := l.cfg.Now()
	if !force && !l.deleteHours[now.Hour()] {
		return 0, nil
	}
	nowMs := now.UnixMilli()
	l.mu.Lock()
	if l.closed || l.segments == nil {
		l.mu.Unlock()
		return 0, nil
	}
	var errs []error
	deleted := 0
	for len(l.segments) > 1 {
		seg, next := l.segments[0], l.segments[1]
		if next.start >= l.wpos {
			break
		}
		v, err := message.ParseRecordView(next.data)
		if err != nil {
			break
		}
		if v.StoreTimestamp+l.cfg.FileReservedTime.Milliseconds() > nowMs {
			break
		}
		l.segments = l.segments[1:]
		if err := seg.destroy(); err != nil {
			errs = append(errs, err)
		}
		deleted++
		l.logger.Info("retention: deleted segment", "file", fileName(seg.start), "sealed_at", v.StoreTimestamp)
	}
	if deleted > 0 {
		minPhys := l.segments[0].start
		cqFiles := 0
		_ = l.forQueues(func(cq *consumeQueue) error {
			n, err := cq.deleteBefore(minPhys)
			cqFiles += n
			if err != nil {
				errs = append(errs, err)
			}
			return nil
		})
		if err := l.index.DeleteBefore(minPhys); err != nil {
			errs = append(errs, err)
		}
		l.logger.Info("retention done", "segments", deleted, "consume_queue_files", cqFiles, "min_phys_offset", minPhys)
	}
	l.mu.Unlock()
	if deleted > 0 {
		select {
		case l.diskKick <- struct{}{}:
		default:
		}
	}
	return deleted, errors.Join(errs...)
}
