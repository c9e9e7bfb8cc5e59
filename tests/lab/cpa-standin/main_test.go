package main

import "testing"

func TestReplicas(t *testing.T) {
	linear := linearParams{CoresPerReplica: 256, NodesPerReplica: 16, Min: 1, PreventSinglePointFailure: true}
	cases := []struct {
		p            linearParams
		nodes, cores int
		want         int32
	}{
		{linear, 1, 2, 1},    // one node: no second replica to spread to
		{linear, 5, 10, 2},   // preventSinglePointFailure
		{linear, 40, 80, 3},  // ceil(40/16)
		{linear, 4, 600, 3},  // ceil(600/256)
		{linearParams{NodesPerReplica: 1, Max: 3}, 9, 9, 3},
		{linearParams{NodesPerReplica: 10, Min: 4}, 2, 2, 4},
	}
	for _, c := range cases {
		if got := replicas(c.p, c.nodes, c.cores); got != c.want {
			t.Errorf("replicas(%+v, %d nodes, %d cores) = %d, want %d", c.p, c.nodes, c.cores, got, c.want)
		}
	}
}
