package kafka

import (
	"errors"
	"fmt"

	"github.com/palisadehq/palisade/eventstore"
)

// Topic names. Category topics begin with TopicPrefix and a dot; the log
// topic does not, so a downstream prefix ACL on "palisade." can never
// reach it (it carries every organization's events).
const (
	TopicPrefix = "palisade"
	// LogTopic carries the whole log in one partition, in log order, for
	// Palisade's own projections.
	LogTopic = "palisade-log"
)

// ErrInvalidTopic: an org id or category cannot be part of a topic name.
var ErrInvalidTopic = errors.New("invalid kafka topic")

// maxTopicLen is Kafka's limit on topic names.
const maxTopicLen = 249

// TopicFunc returns the relay's topic function for category topics:
// "palisade.<category>", or "palisade.<org>.<category>" when prefixPerOrg
// is set. An event whose org or category is not a valid topic name part
// (see [CategoryTopic]) gets the empty topic, which the publisher refuses,
// stopping the relay rather than publishing somewhere unexpected.
func TopicFunc(prefixPerOrg bool) eventstore.TopicFunc {
	return func(env eventstore.Envelope) string {
		org := ""
		if prefixPerOrg {
			org = env.OrgID
		}
		topic, err := categoryTopic(org, env.Stream.Category)
		if err != nil {
			return ""
		}
		return topic
	}
}

// LogTopicFunc returns the relay's topic function for the log topic.
func LogTopicFunc() eventstore.TopicFunc {
	return func(eventstore.Envelope) string { return LogTopic }
}

// CategoryTopic names the topic of category's events: of every org when
// org is empty, of org alone otherwise. Org ids and categories must be
// 1–128 of [A-Za-z0-9-]: no dot, so that "palisade.<org>." is a prefix of
// that org's topics and of no other org's, and no underscore, which Kafka
// confuses with a dot in metric names. (Stream names already forbid the
// underscore in both; org ids are UUIDs or "platform".)
func CategoryTopic(org, category string) (string, error) {
	return categoryTopic(org, category)
}

// ConsumerTopics lists the topics a consumer of categories needs: the
// category topics when org is empty (the relay runs without per-org
// topics), or org's own topics otherwise.
func ConsumerTopics(org string, categories ...string) ([]string, error) {
	if len(categories) == 0 {
		return nil, fmt.Errorf("%w: no category given", ErrInvalidTopic)
	}
	topics := make([]string, 0, len(categories))
	for _, c := range categories {
		t, err := categoryTopic(org, c)
		if err != nil {
			return nil, err
		}
		topics = append(topics, t)
	}
	return topics, nil
}

func categoryTopic(org, category string) (string, error) {
	if !topicPart(category) {
		return "", fmt.Errorf("%w: category %q", ErrInvalidTopic, category)
	}
	if org == "" {
		return TopicPrefix + "." + category, nil
	}
	if !topicPart(org) {
		return "", fmt.Errorf("%w: organization %q", ErrInvalidTopic, org)
	}
	t := TopicPrefix + "." + org + "." + category
	if len(t) > maxTopicLen {
		return "", fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidTopic, t, maxTopicLen)
	}
	return t, nil
}

// topicPart accepts 1–128 characters of [A-Za-z0-9-].
func topicPart(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// validTopic checks a whole topic name against Kafka's rules.
func validTopic(t string) bool {
	if t == "" || t == "." || t == ".." || len(t) > maxTopicLen {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// CheckpointCategory is the topic category of the audit chain's signed
// checkpoints: "palisade.audit-checkpoints", or
// "palisade.<org>.audit-checkpoints" with topics per org, keyed by org id
// like every other topic.
const CheckpointCategory = "audit-checkpoints"

// CheckpointTopic names the topic org's checkpoints go to: of every org
// when perOrg is false.
func CheckpointTopic(org string, perOrg bool) (string, error) {
	if !perOrg {
		org = ""
	}
	return categoryTopic(org, CheckpointCategory)
}
