package bots

import "github.com/palisadehq/palisade/domain"

// Category is the stream category of bots.
const Category = "bot"

// Grants are the resources and permissions a bot may use when it runs.
type Grants struct {
	KnowledgeBases []string `json:"knowledge_bases" audit:"record"`
	DataSources    []string `json:"data_sources" audit:"record"`
	Tools          []string `json:"tools" audit:"record"`
	Permissions    []string `json:"permissions" audit:"record"`
}

// BotCreated starts a bot's stream.
type BotCreated struct {
	ID           string `json:"id" audit:"record"`
	Name         string `json:"name" audit:"record"`
	Instructions string `json:"instructions" audit:"content"`
	Grants       Grants `json:"grants"`
}

// BotUpdated records changed fields; nil fields did not change.
type BotUpdated struct {
	Name         *string `json:"name,omitempty" audit:"record"`
	Instructions *string `json:"instructions,omitempty" audit:"content"`
	Grants       *Grants `json:"grants,omitempty"`
}

// BotArchived records that a bot no longer runs or changes.
type BotArchived struct{}

func (BotCreated) EventType() string  { return "BotCreated" }
func (BotUpdated) EventType() string  { return "BotUpdated" }
func (BotArchived) EventType() string { return "BotArchived" }

// Events returns a zero value of every event type of this package.
func Events() []domain.Event {
	return []domain.Event{&BotCreated{}, &BotUpdated{}, &BotArchived{}}
}
