//! Isolating the instances DRS refuses: DRS refuses a whole `StartFailbackLaunch` for one bad
//! instance, and does not always say which. A refused piece is bisected: the first half is tried;
//! if it launches whole, the culprit is in the second half, which is split again without a call —
//! so one unnamed culprit costs about log2(chunk) calls.

/// What to do with the next piece of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send these instances.
    Launch(Vec<String>),
    /// Its sibling launched whole, so this lone instance is the one DRS refused.
    Culprit {
        id: String,
        code: String,
        message: String,
    },
}

/// DRS's refusal of a call, kept to reject the culprit it is finally pinned on.
#[derive(Debug, Clone)]
struct Refusal {
    code: String,
    message: String,
}

/// Part of a chunk still to launch. `known_bad` holds the parent's refusal when this piece is the
/// second half of a bisected piece, with how many instances had launched before and the size of
/// the first half.
struct Piece {
    ids: Vec<String>,
    known_bad: Option<(Refusal, usize, usize)>,
}

/// The pieces of one chunk still to launch, first half first.
pub struct Pieces(Vec<Piece>);

impl Pieces {
    pub fn new(ids: Vec<String>) -> Self {
        Pieces(vec![Piece {
            ids,
            known_bad: None,
        }])
    }

    /// The next thing to do, given how many of the chunk's instances have launched so far.
    pub fn next(&mut self, launched: usize) -> Option<Next> {
        loop {
            let piece = self.0.pop()?;
            let Some((refusal, launched_before, sibling_len)) = piece.known_bad else {
                return Some(Next::Launch(piece.ids));
            };
            if launched != launched_before + sibling_len {
                // The first half did not launch whole: nothing is known of this one; try it.
                return Some(Next::Launch(piece.ids));
            }
            // The sibling launched whole, so the refusal was caused by this half.
            if let [culprit] = piece.ids.as_slice() {
                return Some(Next::Culprit {
                    id: culprit.clone(),
                    code: refusal.code,
                    message: refusal.message,
                });
            }
            self.push_halves(piece.ids, refusal, launched);
        }
    }

    /// DRS refused `ids` without naming a culprit: split them.
    pub fn bisect(&mut self, ids: Vec<String>, code: String, message: String, launched: usize) {
        self.push_halves(ids, Refusal { code, message }, launched);
    }

    fn push_halves(&mut self, mut ids: Vec<String>, refusal: Refusal, launched: usize) {
        let second = ids.split_off(ids.len() / 2);
        let first_len = ids.len();
        self.0.push(Piece {
            ids: second,
            known_bad: Some((refusal, launched, first_len)),
        });
        self.0.push(Piece {
            ids,
            known_bad: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|k| format!("i-{k:08x}")).collect()
    }

    /// Runs the bisection against a DRS that refuses any piece holding a culprit.
    fn isolate(n: usize, culprits: &[usize]) -> (Vec<String>, usize) {
        let all = ids(n);
        let bad: Vec<&String> = culprits.iter().map(|&k| &all[k]).collect();
        let mut pieces = Pieces::new(all.clone());
        let (mut launched, mut calls, mut found) = (0, 0, vec![]);
        while let Some(next) = pieces.next(launched) {
            match next {
                Next::Launch(piece) => {
                    calls += 1;
                    if piece.iter().any(|id| bad.contains(&id)) {
                        if piece.len() == 1 {
                            found.push(piece[0].clone());
                        } else {
                            pieces.bisect(piece, "ConflictException".into(), "no".into(), launched);
                        }
                    } else {
                        launched += piece.len();
                    }
                }
                Next::Culprit { id, .. } => found.push(id),
            }
        }
        assert_eq!(launched + found.len(), n, "every instance accounted for");
        found.sort();
        (found, calls)
    }

    #[test]
    fn one_culprit_costs_about_log2_calls() {
        let (found, calls) = isolate(100, &[77]);
        assert_eq!(found, [ids(100)[77].clone()]);
        assert!(calls - 1 <= 2 * 7, "{calls} calls");
    }

    #[test]
    fn several_culprits_are_all_found() {
        let (found, _) = isolate(64, &[3, 40]);
        assert_eq!(found, [ids(64)[3].clone(), ids(64)[40].clone()]);
        let (found, _) = isolate(5, &[0, 1, 2, 3, 4]);
        assert_eq!(found.len(), 5);
    }
}
