package migrate

import "fmt"

// released pins the checksum of every released migration (Checksum: its
// statements rendered with canonical options, guards included). A change
// to a released migration, in its template or in a Go constant the
// template pulls in (schema.StateRankExpr, column names, engine or TTL
// helpers), changes its checksum: TestReleasedChecksums fails, and Up
// refuses to run, instead of a fleet silently disagreeing about what
// version N means. A new migration is added here when it is released.
//
// legacy is the checksum binaries before schema version 3 recorded for
// versions 1 and 2 (a SHA-256 of version, name and template text, which
// missed the Go constants the templates use); Up accepts it for those
// versions, since their rendered SQL is pinned here, and records the
// current checksum in its place.
var released = map[uint32]struct{ rendered, legacy string }{
	1:  {rendered: "28b90953c0d3e2d373d3bd6aac8950c12b5b144e2236d148c51181cfc0822079", legacy: "a9c5d05469b1e97484b7f9dbef71fc7bc06408db7687350d68d77f8b22b1441c"},
	2:  {rendered: "fe32c42a623254ca350ecec72396e6407ef7389e396547bcdf9ede27bfe03cd2", legacy: "e28c6e80f720966f0586f7a599da5f03a5e4d594785d4899e01feaebcc2d17bb"},
	3:  {rendered: "e987d3626fe0f2c795e13cd52e1a667a6eded6e6eaa41053ab03c21204858735"},
	4:  {rendered: "54249175cb227068fb12a295ba6aa7186743d376c0473c2c701e48b805789ec8"},
	5:  {rendered: "83fc4d097c9e2edf3ccd22cf235f5b80cf3bcd8a1eae8e5b7e9e3313b2b80603"},
	6:  {rendered: "c505009729a20525f1e9390c8a019be9fbbaa5aecb8f096b5aaf4ffff13d77b3"},
	7:  {rendered: "37b31c1d20d79d97a16c32f811cf6b63beaea6274ee104f2730362066cd2db80"},
	8:  {rendered: "6f71684d7c5a2e663dbd32d17e20697d5c880ce35eff45ecca36f9e24651171e"},
	9:  {rendered: "82a2220384993905254dac5e386b83e9f04cb8c719915face6c40dbd309ce41c"},
	10: {rendered: "714d0892d51f02004a645e9bc50ddbba70246d399ba542e43e572eb71edf60ed"},
	11: {rendered: "a44e3328d403eaf5b277458322ac91d4c431100df4b2daf87573c7dbb38f5cde"},
	12: {rendered: "527beeb1c25af598f57ede6380795671bc976e08e4f619183a007e390f018747"},
	13: {rendered: "66331f4b0ea9c82846d0bf66c834454087f21e92f46725364dbad1327dfba8a1"},
}

// checkReleased refuses migrations whose SQL no longer matches what was
// released.
func checkReleased(ms []Migration) error {
	for _, m := range ms {
		pin, ok := released[m.Version]
		if !ok || pin.rendered == "" || m.Name != builtinName(m.Version) {
			continue
		}
		if got := m.Checksum(); got != pin.rendered {
			return fmt.Errorf("migration %d (%q) renders to checksum %.12s, released as %.12s: released migrations must not change (a template or a Go constant it uses was edited), add a new version", m.Version, m.Name, got, pin.rendered)
		}
	}
	return nil
}

func builtinName(v uint32) string {
	if v == 0 || int(v) > len(builtin) {
		return ""
	}
	return builtin[v-1].Name
}
