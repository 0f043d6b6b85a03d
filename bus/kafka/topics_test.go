package kafka_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/palisadehq/palisade/bus/kafka"
	"github.com/palisadehq/palisade/eventstore"
)

func TestTopicFunc(t *testing.T) {
	t.Parallel()
	const org = "0198c0de-0000-7000-8000-00000000000a"
	for _, tc := range []struct {
		name      string
		perOrg    bool
		org, cat  string
		wantTopic string
	}{
		{"category", false, org, "bot", "palisade.bot"},
		{"security of the platform", false, "platform", "security", "palisade.security"},
		{"per org", true, org, "bot", "palisade." + org + ".bot"},
		{"per org, platform", true, "platform", "security", "palisade.platform.security"},
		// A dot would make "palisade.acme." a prefix of "palisade.acme.eu.bot":
		// such an event gets no topic, and the publisher refuses it.
		{"org with a dot", true, "acme.eu", "bot", ""},
		{"org with a colon", true, "acme:eu", "bot", ""},
		{"org with a dot, without per-org topics", false, "acme.eu", "bot", "palisade.bot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := eventstore.Envelope{Metadata: eventstore.Metadata{OrgID: tc.org}, Stream: eventstore.StreamName{Category: tc.cat, OrgID: tc.org, EntityID: "x"}}
			if got := kafka.TopicFunc(tc.perOrg)(env); got != tc.wantTopic {
				t.Fatalf("topic %q, want %q", got, tc.wantTopic)
			}
		})
	}
	if got := kafka.LogTopicFunc()(eventstore.Envelope{}); got != kafka.LogTopic {
		t.Fatalf("log topic %q", got)
	}
}

func TestConsumerTopics(t *testing.T) {
	t.Parallel()
	got, err := kafka.ConsumerTopics("", "org", "bot", "security")
	if err != nil || !slices.Equal(got, []string{"palisade.org", "palisade.bot", "palisade.security"}) {
		t.Fatalf("all orgs: %v, %v", got, err)
	}
	got, err = kafka.ConsumerTopics("org-1", "bot", "security")
	if err != nil || !slices.Equal(got, []string{"palisade.org-1.bot", "palisade.org-1.security"}) {
		t.Fatalf("one org: %v, %v", got, err)
	}
	for _, bad := range [][]string{{"a.b", "bot"}, {"", "b.ot"}, {"", ""}, {"org_1", "bot"}, {""}} {
		if _, err := kafka.ConsumerTopics(bad[0], bad[1:]...); !errors.Is(err, kafka.ErrInvalidTopic) {
			t.Errorf("ConsumerTopics(%q, %q) = %v, want ErrInvalidTopic", bad[0], bad[1:], err)
		}
	}
}
