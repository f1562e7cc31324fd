"""benchmarks/readme_results.py: the README's Results block comes from the result files, replaces only what is
between its markers, and shows model, baseline and target side by side."""

import json

from tests.benchmarks import load_script


def test_results_block_is_generated_from_the_files_and_replaced_in_place(tmp_path):
    script = load_script("readme_results")
    results, gallery = tmp_path / "results", tmp_path / "examples" / "gallery"
    results.mkdir()
    gallery.mkdir(parents=True)
    (gallery / "upsampler.png").write_bytes(b"png")
    groups = {"video+text/heldin": {"audio_adherence": 0.5, "sync/within_one_frame": 0.25, "av_align": 0.3},
              "video+text/heldout": {"audio_adherence": 0.75},
              "text only (null video)/heldin": {"audio_adherence": 0.125}}
    quality = {"foley": {"formats": {"10s@24fps": groups}, "settings_by_format": {"10s@24fps": {"n": 16, "baseline_n": 8, "steps": 20}}},
               "upsample": {"formats": {"10s@24fps": {"upsampler": {"clips": 8, "upsampling/psnr": 26.2, "upsampling/bicubic_psnr": 25.3}}}},
               "edit": {"formats": {"10s@24fps": {"edit model/heldin": {"edit/preservation_psnr": 11.0},
                                                  "autoencoder only/heldin": {"edit/preservation_psnr": 14.25}}}}}
    (results / "quality.json").write_text(json.dumps(quality))
    speed = {"meta": {"device": "x86_64", "threads": 1, "torch": "2.11", "steps": 50, "pipeline": "weights/tiny"},
             "formats": [{"format": "10@24", "dtype": "fp32", "seconds": 42.5, "peak_memory_mb": 1077,
                          "stages": {"video transformer": 25.0, "audio transformer": 15.2, "mux": 0.6, "other": 0.4}}]}
    (results / "speed_cpu.json").write_text(json.dumps(speed))
    batch = {"meta": {"prompts": 16, "duration_s": 2.0, "fps": 8, "steps": 50, "model": "shipped weights", "cpus": 2,
                      "timer": "wall clock"},
             "results": {"local": {"seconds": 55.4, "clips_per_minute": 17.33}, "ray": "skipped: ray[data] is not installed"},
             "ratio_to_local": {"local": 1.0}}
    (results / "batch.json").write_text(json.dumps(batch))
    peers = {"meta": {"video_tokens": 960, "text_tokens": 120, "batch": 1, "threads": 1, "repeats": 5},
             "results": [{"model": "ours", "dtype": "fp32", "mode": "forward", "median_s": 0.3, "time_vs_ours": 1.0,
                          "flops_vs_ours": 1.0, "achieved_gflop_per_s": 36.1}],
             "pipeline_overhead": [{"pipeline": "ours", "steps": 10, "median_wall_s": 6.24, "median_overhead_s": 0.05,
                                    "overhead_ms_per_step": 5.0, "overhead_vs_ours": 1.0}]}
    (results / "transformers_cpu.json").write_text(json.dumps(peers))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{script.START}\nstale\n{script.END}\n\n## Roadmap\n")

    text = script.update(readme, results, gallery)
    assert "stale" not in text and text.endswith("\n\n## Roadmap\n") and text.count(script.START) == 1
    assert "| foley | 10s@24fps (n 16, baseline n 8, 20 steps) | audio_adherence | 50.0 % | 75.0 % | text only | 12.5 % | – | >= 85 % |" in text
    assert "| edit | 10s@24fps (n None, None steps) | edit/preservation_psnr | 11.0 dB | – | SDEdit | – | – | >= 25 dB |" in text
    assert "| edit | 10s@24fps | edit/preservation_psnr, the source through the vae (no edit): the ceiling | 14.2 dB | – | | | | |" in text
    assert "| upsample | 10s@24fps (n 8) | PSNR vs the 2x render | 26.2 dB | | bicubic | 25.3 dB | | bicubic + 2 dB |" in text
    assert "| 10@24 | fp32 | 42.5 | 4.25 | video transformer 25.0, audio transformer 15.2, mux 0.6 | 1077 |" in text
    assert "| local | 17.33 | 55.4 | 1.00 |" in text and "| ray |" not in text  # a skipped engine has no row
    assert "| ours | fp32 | forward | 0.300 | 1.00 | 1.00 | 36.10 |" in text
    assert "| ours | 10 | 6.24 | 0.050 | 5.0 | 1.00 |" in text
    assert "![upsampler](examples/gallery/upsampler.png)" in text
    assert script.update(readme, results, gallery) == text  # idempotent
