// Package ledger keeps the reservations of the boxes of one slice, so that
// boxes that share the slice's memory budget admit growth against one
// view of it: each box's backpressure publishes, after each look, the
// growth it admitted and has not used yet, and reads the others'.
//
// A ledger is a directory in boxrun's runtime directory (see rundir), one
// per slice, with one file per box and a lock file. A box's look takes the
// lock, reads the others' entries, decides and writes its own before it
// lets go, so that two boxes never admit growth into the same room.
// Entries of boxes that are gone, not refreshed for Stale, or unreadable
// are ignored and removed: a box that died cannot hold room for ever. An
// entry counted while its growth already shows in the slice's usage
// counts twice, which only makes the boxes more careful.
package ledger
