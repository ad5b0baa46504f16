package cpu

import (
	"fmt"

	"github.com/rfnet/rfnet-native/tensor"
)

func (kern[T]) gather(tableb, idsb tensor.Buffer, dim int) tensor.Buffer {
	table, ids := vals[T]("gather", tableb), ints("gather", idsb)
	rows := len(table) / dim
	out := make([]T, len(ids)*dim)
	for i, id := range ids {
		if id < 0 || int(id) >= rows {
			panic(fmt.Sprintf("cpu: gather: id %d outside a table of %d rows", id, rows))
		}
		copy(out[i*dim:(i+1)*dim], table[int(id)*dim:])
	}
	return wrap(out)
}
