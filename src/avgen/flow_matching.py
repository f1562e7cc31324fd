"""Flow matching on Movie Gen's straight path: training pairs, logit-normal times, the sampling schedule.

Convention (Movie Gen, MMAudio): flow time t in [0, 1], x0 ~ N(0, I) is noise (t = 0), x1 is data (t = 1),

    x_t = t * x1 + (1 - (1 - sigma_min) * t) * x0,      target velocity u = dx_t/dt = x1 - (1 - sigma_min) * x0.

The transformer takes `timestep=t` and predicts u.

diffusers' FlowMatchEulerDiscreteScheduler runs the other way: sigma = 1 - t (1 = noise, 0 = data), the path
x = (1 - sigma) * x1 + sigma * noise (ours with sigma_min = 0), timesteps = sigma * num_train_timesteps, and
its step x <- x + (sigma_next - sigma) * model_output is an Euler step of dx/dsigma = -u. So a pipeline
converts the time and flips the sign (keep the scheduler's default shift=1.0, which leaves sigmas as given):

    scheduler.set_timesteps(sigmas=linear_quadratic_sigmas(num_inference_steps), device=device)
    for timestep in scheduler.timesteps:
        t = 1 - timestep / scheduler.config.num_train_timesteps
        velocity = transformer(latents, prompt_embeds, timestep=t.expand(batch), fps=fps).sample
        latents = scheduler.step(-velocity, timestep, latents).prev_sample

Since dt = -dsigma, that step is exactly Euler in t for any sigma_min; only scheduler.scale_noise (noising a
given clip) assumes sigma_min = 0.
"""

from __future__ import annotations

import torch

SIGMA_MIN = 1e-5  # Movie Gen's value: the path ends at data plus 1e-5 of noise


def sample_flow_time(batch_size: int, mean: float = 0.0, std: float = 1.0, generator=None, device=None) -> torch.Tensor:
    """Logit-normal t (B,): sigmoid of N(mean, std), which spends training on the middle of the path."""
    return torch.sigmoid(mean + std * torch.randn(batch_size, generator=generator, device=device))


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)  # (B,) -> (B, 1, ..., 1)


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """x_t on the straight path from noise x0 (t = 0) to data x1 (t = 1); t (B,)."""
    t = _expand(t, x1)
    return t * x1 + (1 - (1 - sigma_min) * t) * x0


def velocity_target(x0: torch.Tensor, x1: torch.Tensor, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """dx_t/dt, the regression target (the same at every t: the path is straight)."""
    return x1 - (1 - sigma_min) * x0


def loss(velocity: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """Velocity MSE per sample (B,), so callers can weight or mask samples before averaging."""
    error = (velocity.float() - velocity_target(x0, x1, sigma_min).float()) ** 2
    return error.flatten(1).mean(dim=1)


def linear_quadratic_sigmas(
    num_steps: int, linear_steps: int | None = None, linear_step_size: float = 1e-3
) -> list[float]:
    """Movie Gen's linear-quadratic schedule as scheduler sigmas: num_steps values from 1.0 down (the
    scheduler appends the final 0).

    The first `linear_steps` (default half) steps advance t by `linear_step_size`, i.e. they are the first
    steps of a 1000-step linear run, where the early, high-noise steps matter most; the rest cover t up to 1
    on a quadratic whose value and slope join the linear part (the formula of genmo's Mochi sampler).
    """
    linear_steps = num_steps // 2 if linear_steps is None else linear_steps
    quadratic_steps = num_steps - linear_steps
    threshold = linear_steps * linear_step_size  # t reached by the linear part
    if not (0 < linear_steps < num_steps and 0 < threshold < 1):
        raise ValueError(
            f"need 0 < linear_steps < num_steps and linear_steps * linear_step_size < 1; "
            f"got {linear_steps}, {num_steps}, {linear_step_size}"
        )
    excess = linear_steps - threshold * num_steps
    quadratic = excess / (linear_steps * quadratic_steps**2)
    linear = threshold / linear_steps - 2 * excess / quadratic_steps**2
    constant = quadratic * linear_steps**2
    times = [i * linear_step_size for i in range(linear_steps)]
    times += [quadratic * i**2 + linear * i + constant for i in range(linear_steps, num_steps)]
    sigmas = [1.0 - t for t in times]
    if any(later >= earlier for earlier, later in zip(sigmas, sigmas[1:] + [0.0])):
        raise ValueError(
            f"linear_step_size {linear_step_size} is too large for a monotone schedule of {num_steps} steps"
        )
    return sigmas


def start_step(sigmas: list[float], strength: float) -> int:
    """Where sampling starts for a given clip noised to `strength` (SDEdit; diffusers' img2img `strength`, read on the
    noise axis): the first step of `sigmas` (descending from 1.0) whose sigma <= strength, or the last step when none
    is (few steps, tiny strength). strength 1.0 -> step 0 (pure noise). The start is then
    interpolate(noise, x1, 1 - sigmas[k]): sigma is measured, not the share of steps, since the linear-quadratic
    schedule spends the first half of its steps above sigma 0.99 (20 steps: sigma <= 0.6 leaves 3)."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1]; got {strength!r}")
    return next((k for k, sigma in enumerate(sigmas) if sigma <= strength), len(sigmas) - 1)
