//! Prints each invariant's statement and premise as SPEC.md §6 writes them.
fn main() {
    for i in coherence_model::INVARIANTS {
        println!("{}\t{}\t{}", i.id, i.statement(), i.premise_words());
    }
}
