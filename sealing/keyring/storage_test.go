package keyring_test

import (
	"testing"

	"github.com/palisadehq/palisade/sealing/keyring"
	"github.com/palisadehq/palisade/sealing/keyring/keyringtest"
)

func TestMemoryStorage(t *testing.T) {
	keyringtest.Run(t, func(t *testing.T) (keyring.Storage, func(*testing.T) keyring.Storage) {
		s := keyring.NewMemoryStorage()
		return s, func(*testing.T) keyring.Storage { return s }
	})
}

func TestFileStorage(t *testing.T) {
	keyringtest.Run(t, func(t *testing.T) (keyring.Storage, func(*testing.T) keyring.Storage) {
		dir := t.TempDir()
		open := func(t *testing.T) keyring.Storage {
			s, err := keyring.OpenFileStorage(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return open(t), open
	})
}
