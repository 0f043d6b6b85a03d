package chain

import "context"

// VerifyInRanges is Verify reading a seekable log in ranges of about
// perRange events, so that small logs are read in many ranges too.
func VerifyInRanges(ctx context.Context, log Log, record RecordReader, keys PublicKeys, org string, perRange uint64) ([]Report, error) {
	return verify(ctx, log, record, keys, org, perRange)
}
