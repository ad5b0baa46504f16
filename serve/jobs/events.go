package jobs

import (
	"encoding/json"
	"sync"
	"time"
)

// subscriberBuffer is how many events a subscriber may fall behind before it is
// dropped. A step event is small; a preview is a few tens of kB of base64.
const subscriberBuffer = 256

// eventLog numbers a job's events, appends them to its events file and hands them to
// its subscribers. Its lock is held across the append and the sends, so that Events
// (which reads the file and subscribes under the same lock) sees each event exactly
// once: in the past it reads or on the channel.
type eventLog struct {
	mu     sync.Mutex
	path   string
	seq    int
	closed bool // the final event has been emitted: no more events, no subscribers
	hungUp bool // the queue stopped with the job queued: no new subscribers
	subs   map[chan Event]struct{}
}

// hangUp closes the subscribers' channels and refuses new ones, for a job that stays
// queued when the queue stops.
func (l *eventLog) hangUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hungUp = true
	for ch := range l.subs {
		close(ch)
	}
	l.subs = nil
}

// emit appends an event and sends it to every subscriber without blocking: one whose
// buffer is full is dropped. final closes the log after this event.
func (l *eventLog) emit(typ string, data json.RawMessage, final bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil // a Work reporting after it returned
	}
	l.seq++
	ev := Event{Seq: l.seq, Type: typ, Time: time.Now().UTC(), Data: data}
	err := appendEvent(l.path, ev)
	for ch := range l.subs {
		select {
		case ch <- ev:
		default:
			delete(l.subs, ch)
			close(ch)
		}
	}
	if final {
		l.closed = true
		for ch := range l.subs {
			close(ch)
		}
		l.subs = nil
	}
	return err
}

// subscribe returns the stored events after after and, while the job is live, a channel
// of the later ones with the function that releases it.
func (l *eventLog) subscribe(after int) (past []Event, live <-chan Event, stop func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	past, err = readEvents(l.path, after)
	if err != nil || l.closed || l.hungUp {
		return past, nil, func() {}, err
	}
	ch := make(chan Event, subscriberBuffer)
	if l.subs == nil {
		l.subs = make(map[chan Event]struct{})
	}
	l.subs[ch] = struct{}{}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if _, ok := l.subs[ch]; ok {
				delete(l.subs, ch)
				close(ch)
			}
		})
	}
	return past, ch, stop, nil
}

// stateData is the data of a "state" event.
type stateData struct {
	State State  `json:"state"`
	Error string `json:"error,omitempty"`
}

// stageData is the data of a "stage" event.
type stageData struct {
	Stage   string `json:"stage"`
	Object  *int   `json:"object,omitempty"`
	Objects int    `json:"objects,omitempty"`
}

// timingData is the data of a "timing" event.
type timingData struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}
