package bots

import "github.com/palisadehq/palisade/domain"

// Category is the stream category of bots.
const Category = "bot"

// Grants are the resources and permissions a bot may use when it runs.
type Grants struct {
	KnowledgeBases []string `json:"knowledge_bases"`
	DataSources    []string `json:"data_sources"`
	Tools          []string `json:"tools"`
	Permissions    []string `json:"permissions"`
}

// BotCreated starts a bot's stream.
type BotCreated struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Instructions string `json:"instructions"`
	Grants       Grants `json:"grants"`
}

// BotUpdated records changed fields; nil fields did not change.
type BotUpdated struct {
	Name         *string `json:"name,omitempty"`
	Instructions *string `json:"instructions,omitempty"`
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
