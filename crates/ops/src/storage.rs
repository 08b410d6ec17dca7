//! Reading f32 elements out of candle's CPU storage, in logical row-major order.

use std::borrow::Cow;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Layout, Storage, Tensor};

use crate::error::OpsError;

/// The elements of a CPU storage in the row-major order of `layout`: borrowed when the layout is
/// contiguous, gathered into a fresh vector otherwise.
pub(crate) fn cpu_f32<'a>(
    op: &'static str,
    arg: &'static str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> Result<Cow<'a, [f32]>, OpsError> {
    let CpuStorage::F32(data) = storage else {
        return Err(OpsError::DType {
            op,
            arg,
            got: storage.dtype(),
        });
    };
    Ok(match layout.contiguous_offsets() {
        Some((start, end)) => Cow::Borrowed(&data[start..end]),
        None => Cow::Owned(gather_strided(data, layout)),
    })
}

/// Copies a strided view into a contiguous row-major vector.
fn gather_strided(data: &[f32], layout: &Layout) -> Vec<f32> {
    let dims = layout.dims();
    let strides = layout.stride();
    let count: usize = dims.iter().product();
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return out;
    }
    let mut index = vec![0usize; dims.len()];
    let mut offset = layout.start_offset();
    for _ in 0..count {
        out.push(data[offset]);
        // Odometer increment over the multi-index, innermost axis first.
        for axis in (0..dims.len()).rev() {
            index[axis] += 1;
            offset += strides[axis];
            if index[axis] < dims[axis] {
                break;
            }
            offset -= strides[axis] * dims[axis];
            index[axis] = 0;
        }
    }
    out
}

/// A read lock on a CPU tensor's storage, from which its f32 elements can be borrowed.
pub(crate) struct CpuView<'a> {
    op: &'static str,
    arg: &'static str,
    storage: candle_core::StorageRef<'a>,
    layout: &'a Layout,
}

impl<'a> CpuView<'a> {
    /// Locks `tensor`'s storage; fails unless it lives on the CPU.
    pub(crate) fn of(
        op: &'static str,
        arg: &'static str,
        tensor: &'a Tensor,
    ) -> Result<Self, OpsError> {
        let (storage, layout) = tensor.storage_and_layout();
        if !matches!(&*storage, Storage::Cpu(_)) {
            return Err(OpsError::Unsupported {
                op,
                what: format!("the CPU kernel for `{arg}`"),
                device: format!("{:?}", tensor.device().location()),
            });
        }
        Ok(Self {
            op,
            arg,
            storage,
            layout,
        })
    }

    /// The tensor's elements in row-major order (borrowed when contiguous).
    pub(crate) fn f32(&self) -> Result<Cow<'_, [f32]>, OpsError> {
        match &*self.storage {
            Storage::Cpu(cpu) => cpu_f32(self.op, self.arg, cpu, self.layout),
            // `of` only builds views of CPU storage.
            _ => unreachable!("CpuView holds CPU storage"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn transposed_view_is_gathered_in_logical_order() -> candle_core::Result<()> {
        let t = Tensor::arange(0f32, 6., &Device::Cpu)?
            .reshape((2, 3))?
            .t()?;
        let view = CpuView::of("test", "t", &t)?;
        assert_eq!(&*view.f32()?, &[0., 3., 1., 4., 2., 5.]);
        Ok(())
    }

    #[test]
    fn narrowed_contiguous_view_is_borrowed() -> candle_core::Result<()> {
        let t = Tensor::arange(0f32, 6., &Device::Cpu)?.narrow(0, 2, 3)?;
        let view = CpuView::of("test", "t", &t)?;
        let data = view.f32()?;
        assert!(matches!(data, Cow::Borrowed(_)));
        assert_eq!(&*data, &[2., 3., 4.]);
        Ok(())
    }

    #[test]
    fn broadcast_view_repeats_elements() -> candle_core::Result<()> {
        let t = Tensor::new(&[1f32, 2.], &Device::Cpu)?.broadcast_as((3, 2))?;
        let view = CpuView::of("test", "t", &t)?;
        assert_eq!(&*view.f32()?, &[1., 2., 1., 2., 1., 2.]);
        Ok(())
    }

    #[test]
    fn non_f32_storage_is_refused() -> candle_core::Result<()> {
        let t = Tensor::new(&[1u32, 2], &Device::Cpu)?;
        let view = CpuView::of("test", "t", &t)?;
        assert!(matches!(view.f32(), Err(OpsError::DType { .. })));
        Ok(())
    }
}
