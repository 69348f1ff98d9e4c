//! Exact counts of binary decisions: the types the kernels produce and `hard` scores. Below
//! both, so that the modules import downward only (`kernels` → `counts` ← `hard`).

use crate::error::{invalid, Result};

/// Three exact counts over a pair of binary decisions: both positive, prediction positive,
/// target positive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Voxels positive in both.
    pub both: u64,
    /// Voxels positive in the prediction.
    pub pred: u64,
    /// Voxels positive in the target.
    pub target: u64,
}

impl Counts {
    #[inline]
    pub(crate) fn add(self, o: Counts) -> Counts {
        Counts {
            both: self.both + o.both,
            pred: self.pred + o.pred,
            target: self.target + o.target,
        }
    }
}

/// Exact confusion counts of one binary decision (one class, one sample or any union).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Confusion {
    /// True positives: positive in both.
    pub tp: u64,
    /// False positives: predicted, not in the reference.
    pub fp: u64,
    /// False negatives: in the reference, not predicted.
    pub fn_: u64,
    /// True negatives: in neither.
    pub tn: u64,
}

impl Confusion {
    /// From the counts of "both", "prediction" and "reference" positives among `total` voxels.
    pub(crate) fn from_counts(c: Counts, total: u64) -> Confusion {
        let tp = c.both;
        let fp = c.pred - c.both;
        let fn_ = c.target - c.both;
        Confusion {
            tp,
            fp,
            fn_,
            tn: total - tp - fp - fn_,
        }
    }

    /// The counts of the union of two disjoint sets of voxels.
    pub fn merge(&self, o: &Confusion) -> Confusion {
        Confusion {
            tp: self.tp + o.tp,
            fp: self.fp + o.fp,
            fn_: self.fn_ + o.fn_,
            tn: self.tn + o.tn,
        }
    }

    /// Reference volume `TP + FN`.
    pub fn reference(&self) -> u64 {
        self.tp + self.fn_
    }

    /// Predicted volume `TP + FP`.
    pub fn prediction(&self) -> u64 {
        self.tp + self.fp
    }

    /// Voxels counted.
    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// Checks that the counts can describe one set of voxels: their total `TP + FP + FN + TN`
    /// (and so every sum a metric divides by, e.g. `2TP + FP + FN`) fits in `u64`. Counts made
    /// by this crate always do; counts from elsewhere (a C caller, a file) may not, and then no
    /// metric of them means anything.
    ///
    /// Errors: [`DiceError::InvalidParameter`](crate::DiceError::InvalidParameter) naming `counts`.
    pub fn validate(&self) -> Result<()> {
        let total = [self.tp, self.fp, self.fn_, self.tn]
            .iter()
            .try_fold(self.tp, |a, &b| a.checked_add(b));
        if total.is_none() {
            return Err(invalid(
                "counts",
                self.tp as f64 + self.fp as f64 + self.fn_ as f64 + self.tn as f64,
                "2·TP + FP + FN + TN overflows u64: not the counts of one set of voxels",
            ));
        }
        Ok(())
    }
}
