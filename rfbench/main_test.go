package rfbench

import (
	"os"
	"testing"

	"github.com/rfnet/rfnet-native/internal/fixtures"
)

func TestMain(m *testing.M) { os.Exit(fixtures.RunWithTempCache(m)) }
