package store

import "hash/maphash"

// A LabelSignature is a 64-bit Bloom filter of an object's labels: two bits
// for each label key and two for each key=value pair. A list with a label
// selector checks an object's signature before its labels: a selector
// that requires a key, or a key with one of some values, cannot match an
// object whose signature lacks their bits, and checking one word of the
// Object spares the lookups in its labels map, which for a large list
// cost more than copying the objects that match (a map per object, each
// its own cache misses).
//
// Caveat: a signature can only rule an object out. Its bits being set
// says nothing (another label may have set them); the selector itself
// decides. Signatures are built per process (the hash is seeded at start)
// and never stored.
type LabelSignature uint64

// labelSeed seeds the signatures of this process.
var labelSeed = maphash.MakeSeed()

// LabelKeySignature is the signature a label key sets in every object
// carrying it.
func LabelKeySignature(key string) LabelSignature {
	return signatureOf(maphash.String(labelSeed, key))
}

// LabelPairSignature is the signature the label key=value sets in every
// object carrying it.
func LabelPairSignature(key, value string) LabelSignature {
	var h maphash.Hash
	h.SetSeed(labelSeed)
	_, _ = h.WriteString(key)
	_ = h.WriteByte(0) // no key or value holds a NUL: the pair is unambiguous
	_, _ = h.WriteString(value)
	return signatureOf(h.Sum64())
}

// signatureOf sets two of the 64 bits from one hash.
func signatureOf(h uint64) LabelSignature {
	return LabelSignature(1)<<(h&63) | LabelSignature(1)<<((h>>6)&63)
}

// labelSignature is the signature of a label set.
func labelSignature(labels map[string]string) LabelSignature {
	var s LabelSignature
	for k, v := range labels {
		s |= LabelKeySignature(k) | LabelPairSignature(k, v)
	}
	return s
}

// MayHave reports whether o may carry every key or pair whose signatures
// sig combines: false means it does not. An Object not built by the store
// (no signature) may have anything.
func (o *Object) MayHave(sig LabelSignature) bool {
	return o.labelSignature == 0 || o.labelSignature&sig == sig
}
