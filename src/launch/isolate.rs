//! The pieces of a chunk still to launch, and how a refused piece is taken apart. DRS refuses a
//! whole `StartFailbackLaunch` for one bad instance, and does not always say which: a refused
//! piece is bisected. The first half is tried; if it launches whole, the culprit is in the second
//! half, which is split again without a call — so one unnamed culprit costs about log2(chunk)
//! calls. The last one left is still sent alone: only DRS refusing it alone makes it a culprit.

/// Part of a chunk still to launch. `known_bad` is set on the second half of a bisected piece:
/// how many instances had launched before, and the size of the first half.
struct Piece {
    ids: Vec<String>,
    known_bad: Option<(usize, usize)>,
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

    /// The next instances to send, given how many of the chunk's instances have launched so far.
    pub fn next(&mut self, launched: usize) -> Option<Vec<String>> {
        loop {
            let piece = self.0.pop()?;
            match piece.known_bad {
                // The sibling launched whole, so the refusal was caused by this half: split it
                // again without a call, down to one instance, which is sent.
                Some((launched_before, sibling_len))
                    if launched == launched_before + sibling_len && piece.ids.len() > 1 =>
                {
                    self.push_halves(piece.ids, launched);
                }
                _ => return Some(piece.ids),
            }
        }
    }

    /// DRS refused `ids` without naming a culprit: split them.
    pub fn bisect(&mut self, ids: Vec<String>, launched: usize) {
        self.push_halves(ids, launched);
    }

    /// Instances to be sent on their own: each alone, or `size` at a time.
    pub fn push_apart(&mut self, ids: Vec<String>, size: usize) {
        for part in ids.chunks(size.max(1)).rev() {
            self.0.push(Piece {
                ids: part.to_vec(),
                known_bad: None,
            });
        }
    }

    fn push_halves(&mut self, mut ids: Vec<String>, launched: usize) {
        let second = ids.split_off(ids.len() / 2);
        let first_len = ids.len();
        self.0.push(Piece {
            ids: second,
            known_bad: Some((launched, first_len)),
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
        while let Some(piece) = pieces.next(launched) {
            calls += 1;
            if !piece.iter().any(|id| bad.contains(&id)) {
                launched += piece.len();
            } else if piece.len() == 1 {
                found.push(piece[0].clone());
            } else {
                pieces.bisect(piece, launched);
            }
        }
        assert_eq!(launched + found.len(), n, "every instance accounted for");
        found.sort();
        (found, calls)
    }

    #[test]
    fn one_culprit_costs_about_log2_calls_and_is_refused_alone() {
        let (found, calls) = isolate(100, &[77]);
        assert_eq!(found, [ids(100)[77].clone()]);
        // ceil(log2(100)) = 7 halvings, the first half of each split sent, the culprit alone
        assert!(calls - 1 <= 2 * 7 + 1, "{calls} calls");
    }

    #[test]
    fn several_culprits_are_all_found() {
        let (found, _) = isolate(64, &[3, 40]);
        assert_eq!(found, [ids(64)[3].clone(), ids(64)[40].clone()]);
        let (found, _) = isolate(5, &[0, 1, 2, 3, 4]);
        assert_eq!(found.len(), 5);
    }

    #[test]
    fn pieces_apart_are_sent_in_order() {
        let mut pieces = Pieces::new(vec![]);
        assert_eq!(pieces.next(0), Some(vec![]));
        pieces.push_apart(ids(5), 2);
        let sent: Vec<Vec<String>> = std::iter::from_fn(|| pieces.next(0)).collect();
        assert_eq!(
            sent,
            [
                ids(5)[..2].to_vec(),
                ids(5)[2..4].to_vec(),
                ids(5)[4..].to_vec()
            ]
        );
    }
}
