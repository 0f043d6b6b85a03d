package commands

// Commands groups the write use cases by bounded context, over one core
// pipeline. The application builds it once; HTTP routes, bot tools and
// workflow steps call the same handlers, so they record the same events.
type Commands struct {
	// Security records refused authentications; refused authorizations
	// are recorded by the handlers themselves.
	Security      *Pipeline
	Tenancy       *Tenancy
	Bots          *Bots
	Knowledge     *Knowledge
	Conversations *Conversations
	// DataSources is nil until the application gives it its keyring and
	// tester (NewDataSources).
	DataSources *DataSources
	Analytics   *Analytics
}

// New returns the handlers of every bounded context over p.
func New(p *Pipeline, minter TokenMinter, emb Embedding) Commands {
	return Commands{
		Security:      p,
		Tenancy:       NewTenancy(p, minter),
		Bots:          NewBots(p),
		Knowledge:     NewKnowledge(p, emb),
		Conversations: NewConversations(p),
		Analytics:     NewAnalytics(p),
	}
}
