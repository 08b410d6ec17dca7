//! A batch's gradients from the gradients of its parts: each variable's `(share, gradient)`
//! terms weighted and added, before the optimizer's update.

use candle_core::{DType, Tensor, Var};

use crate::{Error, Result};

/// Each variable with `Σ share · gradient` over its `(share, gradient)` terms (at least one): a
/// lone term of share 1 is the gradient itself; the `f32` CPU terms of all the variables are
/// added in one pass split over the threads ([`rkeras_ops::weighted_sums`]), others by candle
/// ops.
pub(crate) fn sum_gradient_terms<'v>(
    terms: &[(&'v Var, Vec<(f32, &Tensor)>)],
) -> Result<Vec<(&'v Var, Tensor)>> {
    let mut sums: Vec<Option<Tensor>> = vec![None; terms.len()];
    let (mut host_groups, mut host_indices) = (Vec::new(), Vec::new());
    for (index, (var, group)) in terms.iter().enumerate() {
        let on_host = group
            .iter()
            .all(|(_, grad)| grad.dtype() == DType::F32 && grad.device().is_cpu());
        match group.as_slice() {
            [] => {
                return Err(Error::Config(format!(
                    "no gradient terms for a variable of shape {:?}",
                    var.dims()
                )))
            }
            [(share, grad)] if *share == 1.0 => sums[index] = Some((*grad).clone()),
            group if on_host => {
                host_groups.push(group.to_vec());
                host_indices.push(index);
            }
            [(first_share, first), rest @ ..] => {
                let first = first.affine(*first_share as f64, 0.0)?;
                let sum = rest.iter().try_fold(first, |sum, (share, grad)| {
                    sum + grad.affine(*share as f64, 0.0)?
                })?;
                sums[index] = Some(sum);
            }
        }
    }
    for (index, sum) in host_indices
        .into_iter()
        .zip(rkeras_ops::weighted_sums(&host_groups)?)
    {
        sums[index] = Some(sum);
    }
    terms
        .iter()
        .zip(sums)
        .map(|((var, _), sum)| {
            sum.map(|sum| (*var, sum))
                .ok_or_else(|| Error::Config("a gradient sum was not computed".into()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn terms_are_weighted_by_share_and_added() -> Result<()> {
        let cpu = &Device::Cpu;
        let t = |values: &[f32]| Tensor::new(values, cpu);
        let (a, b, c) = (
            Var::new(&[0f32, 0.], cpu)?,
            Var::new(&[0f32], cpu)?,
            Var::new(&[0f32], cpu)?,
        );
        let (a_first, a_second, b_first, c_only) =
            (t(&[4.0, 8.0])?, t(&[2.0, -4.0])?, t(&[10.0])?, t(&[-3.0])?);
        let sums = sum_gradient_terms(&[
            (&a, vec![(0.75, &a_first), (0.25, &a_second)]),
            (&b, vec![(0.75, &b_first)]),
            (&c, vec![(1.0, &c_only)]),
        ])?;
        let values: Vec<Vec<f32>> = sums
            .iter()
            .map(|(_, sum)| sum.to_vec1::<f32>())
            .collect::<candle_core::Result<_>>()?;
        assert_eq!(values, [vec![3.5, 5.0], vec![7.5], vec![-3.0]]);
        assert_eq!(sums[0].0.id(), a.id());
        let message = sum_gradient_terms(&[(&a, vec![])]).unwrap_err();
        assert!(
            message.to_string().contains("no gradient terms"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn terms_off_the_host_are_added_by_candle_ops() -> Result<()> {
        let cpu = &Device::Cpu;
        let w = Var::new(&[1f64, 2.], cpu)?;
        let (first, second) = (
            Tensor::new(&[4f64, 8.], cpu)?,
            Tensor::new(&[2f64, -4.], cpu)?,
        );
        let sums = sum_gradient_terms(&[(&w, vec![(0.75, &first), (0.25, &second)])])?;
        assert_eq!(sums[0].1.to_vec1::<f64>()?, [3.5, 5.0]);
        Ok(())
    }
}
