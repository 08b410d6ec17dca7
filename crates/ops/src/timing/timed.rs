//! A custom-op wrapper that records the cost of every forward and backward call of the op it wraps.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use super::meter::{measure, CostLog, Pass};

/// `inner`, recording each CPU forward and each backward under `name`.
pub(crate) struct Timed<T> {
    pub name: &'static str,
    pub inner: T,
    pub log: Arc<CostLog>,
}

impl<T> Timed<T> {
    fn run<R>(&self, pass: Pass, work: impl FnOnce() -> R) -> R {
        let (result, cost) = measure(work);
        self.log.record(self.name, pass, cost);
        result
    }
}

type Forward = candle_core::Result<(CpuStorage, Shape)>;

impl<T: CustomOp1> CustomOp1 for Timed<T> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Forward {
        self.run(Pass::Forward, || self.inner.cpu_fwd(s, l))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        self.run(Pass::Backward, || self.inner.bwd(arg, res, grad))
    }
}

impl<T: CustomOp2> CustomOp2 for Timed<T> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Forward {
        self.run(Pass::Forward, || self.inner.cpu_fwd(s1, l1, s2, l2))
    }

    fn bwd(
        &self,
        a1: &Tensor,
        a2: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        self.run(Pass::Backward, || self.inner.bwd(a1, a2, res, grad))
    }
}

impl<T: CustomOp3> CustomOp3 for Timed<T> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    #[allow(clippy::too_many_arguments)]
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Forward {
        self.run(Pass::Forward, || self.inner.cpu_fwd(s1, l1, s2, l2, s3, l3))
    }

    fn bwd(
        &self,
        a1: &Tensor,
        a2: &Tensor,
        a3: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.run(Pass::Backward, || self.inner.bwd(a1, a2, a3, res, grad))
    }
}
