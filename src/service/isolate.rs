//! What an isolate remembers between the requests it serves (tenant ids, recent
//! `lastUsedAt` writes, where list pages ended): maps that only ever help, so each is bounded and
//! simply starts over when full, and losing one (a new isolate) costs a D1 statement, never a
//! wrong answer.

use std::collections::HashMap;
use std::hash::Hash;

/// Insert into a remembered map of at most `max` entries, emptying it first when it is full.
pub fn remember<K: Eq + Hash, V>(map: &mut HashMap<K, V>, max: usize, key: K, value: V) {
    if map.len() >= max {
        map.clear();
    }
    map.insert(key, value);
}
