package commitlog

// Preallocation of the next segment: when a segment becomes active, an owned
// goroutine creates, fallocates and maps the one after it, so the append that
// rolls over does not wait for the file system. The spare is an ordinary
// zero segment file; Close deletes it (so replicas' directories stay equal)
// and recovery deletes it as any segment beyond the end of the log.

func (l *Log) preallocLoop() {
	for {
		select {
		case <-l.stop:
			return
		case start := <-l.preallocReq:
			l.preMu.Lock()
			if start == l.spareWant && (l.spare == nil || l.spare.start != start) {
				l.dropSpareLocked()
				mf, err := openMappedFile(joinName(l.cfg.CommitLogDir, start), start, l.segSize(), true)
				if err != nil {
					l.logger.Debug("preallocate next segment", "file", fileName(start), "err", err)
				} else {
					l.spare = mf
				}
			}
			l.preMu.Unlock()
		}
	}
}

// requestSpare asks for the segment after the active one (non-blocking).
func (l *Log) requestSpare(start int64) {
	if l.preallocReq == nil {
		return
	}
	l.preMu.Lock()
	l.spareWant = start
	l.preMu.Unlock()
	select {
	case l.preallocReq <- start:
	default:
	}
}

// takeSpare returns the preallocated segment starting at start, if any.
// Otherwise it drops any spare and cancels pending requests, so the caller
// can create the file itself without the goroutine racing it.
func (l *Log) takeSpare(start int64) *mappedFile {
	l.preMu.Lock()
	defer l.preMu.Unlock()
	if l.spare != nil && l.spare.start == start {
		mf := l.spare
		l.spare = nil
		return mf
	}
	l.dropSpareLocked()
	return nil
}

// dropSpareLocked deletes the spare segment and cancels pending requests;
// the caller holds preMu.
func (l *Log) dropSpareLocked() {
	l.spareWant = -1
	if l.spare != nil {
		_ = l.spare.destroy()
		l.spare = nil
	}
}
