package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/palisadehq/palisade/bus/fanout"
)

func newMessage(i int) *message.Message {
	msg := message.NewMessage(fmt.Sprintf("m-%d", i), []byte(fmt.Sprint(i)))
	msg.Metadata.Set("n", fmt.Sprint(i))
	return msg
}

// receive takes n messages from ch, acknowledging each, and returns their
// uuids in order.
func receive(t *testing.T, ch <-chan *message.Message, n int) []string {
	t.Helper()
	var got []string
	for range n {
		select {
		case m := <-ch:
			got = append(got, m.UUID)
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("received %v, then nothing", got)
		}
	}
	return got
}

// TestEverySubscriberGetsEveryMessageInOrder, and the message it gets
// shares the published metadata instead of a copy.
func TestEverySubscriberGetsEveryMessageInOrder(t *testing.T) {
	t.Parallel()
	bus := fanout.New()
	t.Cleanup(func() { bus.Close() })
	const subscribers, messages = 5, 50
	var chans []<-chan *message.Message
	for range subscribers {
		ch, err := bus.Subscribe(context.Background(), "events")
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	other, err := bus.Subscribe(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	published := make([]*message.Message, messages)
	for i := range published {
		published[i] = newMessage(i)
	}
	done := make(chan error, 1)
	go func() { done <- bus.Publish("events", published...) }()
	var want []string
	for _, m := range published {
		want = append(want, m.UUID)
	}
	var wg sync.WaitGroup
	results := make([][]string, subscribers)
	shared := make([]bool, subscribers)
	for i, ch := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shared[i] = true
			for j := range messages {
				m := <-ch
				results[i] = append(results[i], m.UUID)
				if reflect.ValueOf(m.Metadata).UnsafePointer() != reflect.ValueOf(published[j].Metadata).UnsafePointer() ||
					m.Metadata.Get("n") != fmt.Sprint(j) || string(m.Payload) != fmt.Sprint(j) {
					shared[i] = false
				}
				m.Ack()
			}
		}()
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i := range subscribers {
		if fmt.Sprint(results[i]) != fmt.Sprint(want) {
			t.Errorf("subscriber %d received %v, want %v", i, results[i], want)
		}
		if !shared[i] {
			t.Errorf("subscriber %d received a message whose metadata is not the published map, or whose content differs", i)
		}
	}
	select {
	case m := <-other:
		t.Errorf("a subscriber of another topic received %s", m.UUID)
	default:
	}
}

// TestPublishWaitsForEveryAck: Publish returns only once every subscriber
// has acknowledged; a nack hands the message again to that subscriber
// alone.
func TestPublishWaitsForEveryAck(t *testing.T) {
	t.Parallel()
	bus := fanout.New()
	t.Cleanup(func() { bus.Close() })
	slow, err := bus.Subscribe(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := bus.Subscribe(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- bus.Publish("events", newMessage(1)) }()
	if got := receive(t, fast, 1); got[0] != "m-1" {
		t.Fatalf("fast received %v", got)
	}
	first := <-slow
	first.Nack()
	select {
	case err := <-done:
		t.Fatalf("Publish returned (%v) before the slow subscriber acknowledged", err)
	case <-time.After(50 * time.Millisecond):
	}
	again := <-slow
	if again.UUID != "m-1" || again == first {
		t.Fatalf("after a nack the slow subscriber received %s (the same message object: %v), want m-1 anew", again.UUID, again == first)
	}
	again.Ack()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-fast:
		t.Errorf("the fast subscriber received %s again after the slow one's nack", m.UUID)
	default:
	}
}

// TestSubscriptionsEnd: a subscription whose context ends is closed and
// no longer holds Publish back; Close ends the rest, unblocks a Publish
// waiting for an ack, and refuses what comes after.
func TestSubscriptionsEnd(t *testing.T) {
	t.Parallel()
	bus := fanout.New()
	ctx, cancel := context.WithCancel(context.Background())
	gone, err := bus.Subscribe(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	stays, err := bus.Subscribe(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, open := <-gone; open {
		t.Fatal("a subscription whose context ended is still open")
	}
	done := make(chan error, 1)
	go func() { done <- bus.Publish("events", newMessage(1), newMessage(2)) }()
	<-stays // never acknowledged
	if err := bus.Publish("nobody", newMessage(3)); err != nil {
		t.Fatalf("a message with no subscriber: %v, want it dropped", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- bus.Close() }()
	select {
	case err := <-done:
		if !errors.Is(err, fanout.ErrAbandoned) {
			t.Fatalf("Publish cut short by Close: %v, want ErrAbandoned", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still waits for an ack after Close")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, open := <-stays; open {
		t.Fatal("a subscription is still open after Close")
	}
	if err := bus.Publish("events", newMessage(4)); !errors.Is(err, fanout.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := bus.Subscribe(context.Background(), "events"); !errors.Is(err, fanout.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
}

// TestConcurrentPublishersAndSubscribers runs publishing, subscribing and
// cancelling at once, for the race detector.
func TestConcurrentPublishersAndSubscribers(t *testing.T) {
	t.Parallel()
	bus := fanout.New()
	var wg sync.WaitGroup
	for i := range 4 {
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := bus.Subscribe(ctx, "events")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for m := range ch {
				if n++; n%7 == 0 {
					m.Nack()
					continue
				}
				m.Ack()
				if i == 0 && n == 20 {
					cancel()
				}
			}
			cancel()
		}()
	}
	var pubs sync.WaitGroup
	for p := range 3 {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for i := range 50 {
				// A subscriber that goes away abandons what it held.
				if err := bus.Publish("events", newMessage(p*100+i)); err != nil && !errors.Is(err, fanout.ErrAbandoned) {
					t.Error(err)
					return
				}
			}
		}()
	}
	pubs.Wait()
	bus.Close()
	wg.Wait()
}

// TestFilteredSubscriptionPassesOverWhatItDoesNotWant: a filtered
// subscription receives only what it wants; what it does not want goes to
// Pass, in order, and only once everything before it was acknowledged;
// other subscribers still receive everything.
func TestFilteredSubscriptionPassesOverWhatItDoesNotWant(t *testing.T) {
	t.Parallel()
	bus := fanout.New()
	t.Cleanup(func() { bus.Close() })
	var mu sync.Mutex
	var log []string // what the filtered subscriber saw, in order
	filtered, err := bus.Filtered(fanout.Filter{
		Wants: func(m *message.Message) bool { return m.Metadata.Get("n") != "1" && m.Metadata.Get("n") != "2" },
		Pass: func(m *message.Message) {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, "passed "+m.UUID)
		},
	}).Subscribe(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	all, err := bus.Subscribe(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- bus.Publish("events", newMessage(0), newMessage(1), newMessage(2), newMessage(3)) }()
	go func() {
		for range 2 {
			m := <-filtered
			time.Sleep(10 * time.Millisecond) // a Pass running before this ack would be logged first
			mu.Lock()
			log = append(log, "received "+m.UUID)
			mu.Unlock()
			m.Ack()
		}
	}()
	if got := receive(t, all, 4); fmt.Sprint(got) != "[m-0 m-1 m-2 m-3]" {
		t.Errorf("the unfiltered subscriber received %v", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "[received m-0 passed m-1 passed m-2 received m-3]"; fmt.Sprint(log) != want {
		t.Errorf("the filtered subscriber saw %v, want %s", log, want)
	}
	if _, err := bus.Filtered(fanout.Filter{Wants: func(*message.Message) bool { return true }}).Subscribe(context.Background(), "events"); err == nil {
		t.Error("a filter without Pass was accepted")
	}
}

// TestAGoneSubscriberIsNotPassedAnythingMore: a filtered subscriber that
// goes away while it holds a message it wanted makes Publish fail, and is
// not passed the messages after it: a consumer group that never took the
// first must not have its position moved past it by the second.
func TestAGoneSubscriberIsNotPassedAnythingMore(t *testing.T) {
	t.Parallel()
	bus := fanout.New()
	t.Cleanup(func() { bus.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var passed []string
	ch, err := bus.Filtered(fanout.Filter{
		Wants: func(m *message.Message) bool { return m.Metadata.Get("n") == "1" },
		Pass: func(m *message.Message) {
			mu.Lock()
			defer mu.Unlock()
			passed = append(passed, m.UUID)
		},
	}).Subscribe(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- bus.Publish("events", newMessage(1), newMessage(2)) }()
	<-ch // held, never acknowledged
	cancel()
	if err := <-done; !errors.Is(err, fanout.ErrAbandoned) {
		t.Fatalf("Publish whose subscriber went away holding a message: %v, want ErrAbandoned", err)
	}
	if err := bus.Publish("events", newMessage(3)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(passed) != 0 {
		t.Errorf("the gone subscriber was passed %v after the message it never acknowledged", passed)
	}
}
