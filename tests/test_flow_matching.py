import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from avgen import flow_matching


def test_path_endpoints_and_velocity():
    generator = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(2, 3, 4, generator=generator), torch.randn(2, 3, 4, generator=generator)
    sigma_min = 1e-2
    torch.testing.assert_close(flow_matching.interpolate(x0, x1, torch.zeros(2), sigma_min), x0)
    torch.testing.assert_close(flow_matching.interpolate(x0, x1, torch.ones(2), sigma_min), x1 + sigma_min * x0)
    t, dt = torch.tensor([0.3, 0.7]), 1e-3
    slope = (
        flow_matching.interpolate(x0, x1, t + dt, sigma_min) - flow_matching.interpolate(x0, x1, t, sigma_min)
    ) / dt
    torch.testing.assert_close(slope, flow_matching.velocity_target(x0, x1, sigma_min), atol=1e-3, rtol=1e-3)
    exact = flow_matching.velocity_target(x0, x1)
    assert flow_matching.loss(exact, x0, x1).shape == (2,)
    assert not flow_matching.loss(exact, x0, x1).any()


def test_scheduler_step_follows_the_training_path():
    """The sign and time conventions of the docstring: one FlowMatchEulerDiscreteScheduler step with
    -velocity at t = 1 - sigma lands exactly on the path the model was trained on (any sigma_min)."""
    generator = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(1, 8, generator=generator), torch.randn(1, 8, generator=generator)
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(sigmas=flow_matching.linear_quadratic_sigmas(10))
    latents = x0
    for timestep in scheduler.timesteps:
        t = 1 - timestep / scheduler.config.num_train_timesteps
        torch.testing.assert_close(latents, flow_matching.interpolate(x0, x1, t[None]), atol=1e-5, rtol=1e-5)
        velocity = flow_matching.velocity_target(x0, x1)  # the conditional path is straight: Euler is exact
        latents = scheduler.step(-velocity, timestep, latents).prev_sample
    torch.testing.assert_close(latents, flow_matching.interpolate(x0, x1, torch.ones(1)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "sigmas, tolerance",
    [
        ([1 - i / 250 for i in range(250)], 0.01),  # 250 linear steps
        # 50 LQ steps: half of them go to t < 0.025, where a learned video model fixes the layout; on this
        # toy, whose only hard part is near the data, that costs accuracy (linear 50 steps: 3 %)
        (flow_matching.linear_quadratic_sigmas(50), 0.1),
    ],
)
def test_euler_with_exact_velocity_recovers_a_gaussian(sigmas, tolerance):
    """Data N(mean, std^2) per dimension: the marginal path stays Gaussian with mean t * mean and
    variance (t * std)^2 + a^2, a = 1 - (1 - sigma_min) t, whose exact velocity is affine in x."""
    mean, std, sigma_min = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5]), flow_matching.SIGMA_MIN

    def velocity(x, t):
        a = 1 - (1 - sigma_min) * t
        spread = torch.sqrt((t * std) ** 2 + a**2)
        spread_rate = (t * std**2 - (1 - sigma_min) * a) / spread
        return mean + spread_rate / spread * (x - t * mean)

    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(sigmas=sigmas)
    latents = torch.randn(40000, 2, generator=torch.Generator().manual_seed(0))
    for timestep in scheduler.timesteps:
        t = 1 - timestep / scheduler.config.num_train_timesteps
        latents = scheduler.step(-velocity(latents, t), timestep, latents).prev_sample
    torch.testing.assert_close(latents.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(latents.std(0), std, atol=0, rtol=tolerance)


def test_linear_quadratic_schedule():
    sigmas = flow_matching.linear_quadratic_sigmas(50)
    assert len(sigmas) == 50 and sigmas[0] == 1.0
    steps = [earlier - later for earlier, later in zip(sigmas, sigmas[1:] + [0.0])]
    assert all(step > 0 for step in steps)  # strictly decreasing down to the scheduler's final 0
    assert steps[:25] == pytest.approx([1e-3] * 25)  # the first 25 steps of a 1000-step linear run
    assert all(later >= earlier - 1e-12 for earlier, later in zip(steps[24:], steps[25:]))  # then growing steps
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(sigmas=sigmas)
    assert len(scheduler.timesteps) == 50 and scheduler.sigmas[0] == 1.0 and scheduler.sigmas[-1] == 0.0
    assert scheduler.timesteps[0] == scheduler.config.num_train_timesteps
    with pytest.raises(ValueError, match="too large"):
        flow_matching.linear_quadratic_sigmas(8, linear_step_size=0.2)


def test_logit_normal_flow_time():
    t = flow_matching.sample_flow_time(10000, generator=torch.Generator().manual_seed(0))
    assert t.shape == (10000,) and 0 < t.min() and t.max() < 1
    assert t.median() == pytest.approx(0.5, abs=0.02)
    again = flow_matching.sample_flow_time(10000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(t, again)


def test_start_step_is_the_first_sigma_at_or_below_the_strength():
    sigmas = flow_matching.linear_quadratic_sigmas(20)  # ..., 0.829, 0.740, 0.631, 0.503, 0.355, 0.187
    assert flow_matching.start_step(sigmas, 1.0) == 0  # pure noise: the whole schedule
    assert [flow_matching.start_step(sigmas, s) for s in (0.8, 0.6, 0.5, 0.2)] == [15, 17, 18, 19]
    assert all(sigmas[flow_matching.start_step(sigmas, s)] <= s < sigmas[flow_matching.start_step(sigmas, s) - 1] for s in (0.95, 0.8, 0.6, 0.3))
    assert flow_matching.start_step(sigmas, 0.01) == 19  # below the last sigma: the last step still runs
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="strength must be in"):
            flow_matching.start_step(sigmas, bad)
